// A folder holding a gateway's private key, for tests of the config parser: `base` is the smallest
// config of a gateway of that type, its key path relative to `dir`. Removed after the test.
import type { ExecutionContext } from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ConfigFolder {
  dir: string;
  base: { gateway: { type: string; id: number; user_id: number; volume_id: number; private_key: string } };
}

export function configFolder(t: ExecutionContext, type: 'RG' | 'UG' | 'AG' = 'RG', id = 1): ConfigFolder {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  writeFileSync(join(dir, 'k.pem'), privateKey);
  return { dir, base: { gateway: { type, id, user_id: 1, volume_id: 1, private_key: 'k.pem' } } };
}
