// What an actor needs to run one driver version: the bundle fetched from Redis, its public config
// and its secrets unsealed with the gateway's private key (as bytes for a Python chassis, parsed
// for a TypeScript driver).
import type { KeyObject } from 'node:crypto';
import type { RedisClient } from '../queues/redis.js';
import { fetchBundle, type DriverBundle } from './bundle.js';
import { unsealSecrets } from './secrets.js';

export interface OpenBundle {
  bundle: DriverBundle;
  config: Record<string, unknown>;
  secrets: Record<string, unknown>;
  secretsJson: Buffer;
}

/** Null when the bundle is not in Redis; throws when its secrets cannot be unsealed. */
export async function openBundle(redis: RedisClient, gateway: string, hash: string, privateKey: KeyObject): Promise<OpenBundle | null> {
  const bundle = await fetchBundle(redis, gateway, hash);
  if (!bundle) return null;
  const secretsJson = bundle.secrets ? unsealSecrets(bundle.secrets, privateKey) : Buffer.from('{}');
  return {
    bundle,
    config: JSON.parse(bundle.config.toString() || '{}') as Record<string, unknown>,
    secrets: JSON.parse(secretsJson.toString()) as Record<string, unknown>,
    secretsJson,
  };
}
