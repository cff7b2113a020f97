// What an actor needs to run one driver version: the bundle fetched from Redis, its public config
// and its secrets unsealed with the gateway's private key (as bytes for a Python chassis, parsed
// for a TypeScript driver). Nothing is used before the bundle's signed manifest checks out
// (bundle-signature.ts): Redis is not trusted.
import type { KeyObject } from 'node:crypto';
import type { RedisClient } from '../queues/redis.js';
import { fetchBundle, type DriverBundle } from './bundle.js';
import { verifyBundle, type BundleManifest } from './bundle-signature.js';
import { unsealSecrets } from './secrets.js';

export interface OpenBundle {
  bundle: DriverBundle;
  config: Record<string, unknown>;
  secrets: Record<string, unknown>;
  secretsJson: Buffer;
  manifest: BundleManifest;
}

/**
 * Null when the bundle is not in Redis; throws BundleRefused when its signature does not check
 * out, SecretsError when its secrets cannot be unsealed.
 */
export async function openBundle(redis: RedisClient, gateway: string, hash: string, privateKey: KeyObject): Promise<OpenBundle | null> {
  const fetched = await fetchBundle(redis, gateway, hash);
  if (!fetched) return null;
  const manifest = verifyBundle(fetched.signed, gateway, hash, privateKey);
  const bundle: DriverBundle = { ...fetched, meta: manifest.meta }; // the signed meta, not the stored copy
  const secretsJson = bundle.secrets ? unsealSecrets(bundle.secrets, privateKey) : Buffer.from('{}');
  return {
    bundle,
    config: JSON.parse(bundle.config.toString() || '{}') as Record<string, unknown>,
    secrets: JSON.parse(secretsJson.toString()) as Record<string, unknown>,
    secretsJson,
    manifest,
  };
}
