// Starts real gateways for tests: a config folder with fresh keys, `sgw start` as a child
// process (its own supervised tree) against the test file's private Redis, and helpers to
// wait for actors and to stop it all.
import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort } from '../../actors/embedded-redis.js';
import { Caps } from '../../proto/messages.js';
import { keys } from '../../queues/names.js';
import type { FileRef } from '../../http/rg-client.js';
import { testRedis } from './redis.js';

export const CLI = fileURLToPath(new URL('../../actors/cli.js', import.meta.url));
export const DISK_DRIVER_JS = fileURLToPath(new URL('../../drivers/builtin/disk/driver.js', import.meta.url));
/** The Python twin of the disk driver, read from the source tree (dist/ holds no driver.py). */
export const DISK_DRIVER_PY = readFileSync(fileURLToPath(new URL('../../../drivers/builtin/disk-python/driver.py', import.meta.url)), 'utf8');

/** The built-in disk driver in each language: RG scenarios run once per entry. */
export const DISK_DRIVERS: { language: string; options: FolderOptions }[] = [
  { language: 'TypeScript', options: {} },
  { language: 'Python', options: { driverSource: DISK_DRIVER_PY, driverFile: 'driver.py' } },
];

let keyCache: { pem: string; key: KeyObject }[] | null = null;
/** Two RSA-2048 key pairs per test process (RG and UG); generating is the slow part. */
function testKeys(): { pem: string; key: KeyObject }[] {
  keyCache ??= [0, 1].map(() => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    return { pem: privateKey, key: createPrivateKey(privateKey) };
  });
  return keyCache;
}

export interface GatewayFolder {
  dir: string;
  configFile: string;
  storageDir: string;
  gatewayId: bigint;
  gatewayKey: string;
  rgKey: KeyObject;
  ugKey: KeyObject;
  ugId: bigint;
  port: number;
  url: string;
  redisUrl: string;
}

export interface FolderOptions {
  /** Driver source (an .mjs module text, or see driverFile); default: the built-in disk driver. */
  driverSource?: string;
  /** The driver file's name (driver.mjs by default; driver.py for a Python driver). */
  driverFile?: string;
  /** Extra top-level config keys merged over the defaults. */
  config?: Record<string, unknown>;
  /** Reuse another folder's gateway identity and port (a second host of the same gateway). */
  sameGatewayAs?: GatewayFolder;
  /** No local driver folder: this host runs whatever version is published in Redis. */
  noDriverFolder?: boolean;
}

/** Writes a gateway's config folder: keys, config.json, driver folder, storage. */
export async function makeGatewayFolder(opts: FolderOptions = {}): Promise<GatewayFolder> {
  const redis = await testRedis();
  const dir = mkdtempSync(join(tmpdir(), 'sgw-test-'));
  const [rg, ug] = testKeys();
  mkdirSync(join(dir, 'keys'));
  writeFileSync(join(dir, 'keys', 'rg.pem'), rg!.pem);
  writeFileSync(join(dir, 'keys', 'ug.pub.pem'), ug!.key.export({ type: 'pkcs1', format: 'pem' }) as string);
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir);
  if (!opts.noDriverFolder) writeDriver(dir, opts.driverSource ?? `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`, { STORAGE_DIR: storageDir }, opts.driverFile);
  const base = opts.sameGatewayAs;
  const gatewayId = base?.gatewayId ?? BigInt(randomBytes(4).readUInt32BE()) + 1000n;
  const ugId = 10n;
  const port = base?.port ?? (await freePort());
  const config = {
    gateway: { type: 'RG', id: String(gatewayId), user_id: '7', volume_id: '3', block_size: 4096, host: '127.0.0.1', port, private_key: 'keys/rg.pem' },
    volume: {
      version: 1, cert_version: 1,
      gateways: [{ id: String(ugId), type: 'UG', user_id: '7', caps: Caps.READ_DATA | Caps.WRITE_DATA | Caps.WRITE_METADATA, public_key: 'keys/ug.pub.pem' }],
    },
    redis: redis.url,
    ...(opts.noDriverFolder ? {} : { driver: 'driver' }),
    cache: { dir: 'cache', max_bytes: 64 << 20 },
    limits: { call_timeout_ms: 3000, request_timeout_ms: 5000, max_upload_bytes: 8 << 20 },
    actors: { concurrency: 8 },
    log: { level: 'warn' },
    ...opts.config,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return {
    dir, configFile: join(dir, 'config.json'), storageDir, gatewayId, gatewayKey: `rg.${gatewayId}`,
    rgKey: rg!.key, ugKey: ug!.key, ugId, port, url: `http://127.0.0.1:${port}`, redisUrl: redis.url,
  };
}

/** Replaces the driver folder's code and config (publish it with `sgw driver publish`). */
export function writeDriver(dir: string, source: string, config: Record<string, unknown>, file = 'driver.mjs'): void {
  rmSync(join(dir, 'driver'), { recursive: true, force: true });
  mkdirSync(join(dir, 'driver'));
  writeFileSync(join(dir, 'driver', file), source);
  writeFileSync(join(dir, 'driver', 'config.json'), JSON.stringify(config));
}

export function copyFolder(from: string): string {
  const to = mkdtempSync(join(tmpdir(), 'sgw-test-copy-'));
  cpSync(from, to, { recursive: true });
  return to;
}

export interface RunningGateway {
  proc: ChildProcess;
  output: () => string;
  stop(): Promise<number | null>;
}

/** `sgw start --config FILE [--roles R]` as a child process (its own process tree). */
export function startGatewayProcess(configFile: string, roles?: string, cwd?: string): RunningGateway {
  const args = [CLI, 'start', '--config', configFile, ...(roles ? ['--roles', roles] : [])];
  const proc = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SGW_LOG_LEVEL: process.env.SGW_TEST_LOG_LEVEL ?? 'warn' } });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  return {
    proc,
    output: () => out,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve(proc.exitCode);
      const kill = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      proc.once('exit', (code) => { clearTimeout(kill); resolve(code); });
      proc.kill('SIGTERM');
    }),
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Live actor instances of a role of a gateway, as the registry sees them. */
export async function liveActors(redis: Redis, gateway: string, role: string): Promise<string[]> {
  return redis.zrangebyscore(keys.alive(gateway, role), Date.now(), '+inf');
}

/** Waits until the gateway answers /PING and every listed role has a live actor. */
export async function waitForGateway(f: GatewayFolder, redis: Redis, roles: string[] = ['driver:read', 'driver:write', 'driver:delete', 'driver:rename']): Promise<void> {
  await waitFor('gateway /PING', async () => (await fetch(`${f.url}/PING`)).status === 200);
  for (const role of roles) await waitFor(`a live ${role} actor`, async () => (await liveActors(redis, f.gatewayKey, role)).length > 0);
}

export function fileRef(f: GatewayFolder, fields: Partial<FileRef> = {}): FileRef {
  return {
    volume_version: 1n, cert_version: 1n, volume_id: 3n, coordinator_id: f.ugId,
    file_id: 0xfedcba9876543210n, file_version: -3n, fs_path: '/dir/file.txt', user_id: 7n, src_gateway_id: f.ugId,
    ...fields,
  };
}

export function cleanup(dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** GET with the path sent exactly as given (fetch would normalize away a "..").*/
export function rawGet(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpGet({ hostname, port, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), headers: res.headers }));
    });
    req.on('error', reject);
  });
}
