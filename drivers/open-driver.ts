// Everything an actor needs to run one driver version: the bundle fetched from Redis, its public
// config, its secrets unsealed with the gateway's private key, and the loaded module.
import type { KeyObject } from 'node:crypto';
import type { Redis } from '../queues/redis.js';
import { fetchBundle, loadDriverModule, type DriverMethod } from './bundle.js';
import { unsealSecrets } from './secrets.js';

export interface OpenDriver {
  hash: string;
  methods: Map<string, DriverMethod>;
  config: Record<string, unknown>;
  secrets: Record<string, unknown>;
}

/** Null when the bundle is not in Redis; throws when it cannot be unsealed or loaded. */
export async function openDriver(redis: Redis, hash: string, privateKey: KeyObject, workDir: string): Promise<OpenDriver | null> {
  const bundle = await fetchBundle(redis, hash);
  if (!bundle) return null;
  const config = JSON.parse(bundle.config.toString() || '{}') as Record<string, unknown>;
  const secrets = bundle.secrets ? (JSON.parse(unsealSecrets(bundle.secrets, privateKey).toString()) as Record<string, unknown>) : {};
  const loaded = loadDriverModule(bundle, workDir);
  return { hash, methods: loaded.methods, config, secrets };
}
