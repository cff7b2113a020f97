// Starts real gateways for tests: a config folder with fresh keys, `sgw start` as a child
// process (its own supervised tree) against the test file's private Redis, and helpers to
// wait for actors and to stop it all.
import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort, tiedToParent } from '../../actors/supervisor/embedded-redis.js';
import { runningStateRedisUrl } from '../../actors/supervisor/state-redis.js';
import { loadConfig } from '../../proto/config/config.js';
import { Caps } from '../../proto/messages.js';
import { keys } from '../../queues/names.js';
import { sealSecrets } from '../../drivers/secrets.js';
import type { FileRef } from '../../http/rg-client.js';
import type { RedisClient } from '../../queues/redis.js';
import { testRedisTarget } from './redis.js';

export const CLI = fileURLToPath(new URL('../../actors/cli/cli.js', import.meta.url));
export const DISK_DRIVER_JS = fileURLToPath(new URL('../../drivers/builtin/disk/driver.js', import.meta.url));
export const DATASET_DRIVER_JS = fileURLToPath(new URL('../../drivers/builtin/dataset/driver.js', import.meta.url));
/** The Python twin of the disk driver, read from the source tree (dist/ holds no driver.py). */
export const DISK_DRIVER_PY = readFileSync(fileURLToPath(new URL('../../../drivers/builtin/disk-python/driver.py', import.meta.url)), 'utf8');
/** The Python twin of the dataset (AG) driver, from the source tree too. */
export const DATASET_DRIVER_PY = readFileSync(fileURLToPath(new URL('../../../drivers/builtin/dataset-python/driver.py', import.meta.url)), 'utf8');

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

/** The application token of test user gateways. */
export const UG_TEST_TOKEN = 'test-ug-token';

export interface GatewayFolder {
  dir: string;
  configFile: string;
  storageDir: string;
  gatewayId: bigint;
  gatewayKey: string;
  /** 3 for replica gateways; random for an AG (each AG test gets a volume, and a namespace, of its own). */
  volumeId: bigint;
  rgKey: KeyObject;
  ugKey: KeyObject;
  ugId: bigint;
  port: number;
  url: string;
  /** The Redis URL of the gateway's config: the test file's, or opts.redisUrl; '' with a Sentinel set or a Cluster (or embeddedRedis: see embeddedRedis()). */
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
  /** Gateway type (default RG); an AG gets an archive volume; a UG signs with the UG key and has id ugId (10). */
  type?: 'RG' | 'AG' | 'UG';
  /** Other gateways of the volume this one lists with their URL (all sign with the RG/AG key). */
  peers?: GatewayFolder[];
  /** The volume (default 3 for RG and UG, random for an AG). */
  volumeId?: bigint;
  /** gateway.block_size (default 4096). */
  blockSize?: number;
  /** The id of the volume's UG (default 10): gateways of one Redis need distinct ids. */
  ugId?: bigint;
  /** The driver's config.json (default: STORAGE_DIR for the disk driver). */
  driverConfig?: Record<string, unknown>;
  /** The driver's secrets, sealed for this gateway's key into driver/secrets.sealed.json. */
  driverSecrets?: Record<string, unknown>;
  /** No `redis` in the config: `sgw start` runs the gateway's private redis-server (see embeddedRedis()). */
  embeddedRedis?: boolean;
  /** A Redis other than the test file's (benchmarks compare Redis settings). */
  redisUrl?: string;
}

/** Writes a gateway's config folder: keys, config.json, driver folder, storage. */
export async function makeGatewayFolder(opts: FolderOptions = {}): Promise<GatewayFolder> {
  const redis = opts.redisUrl ? { config: opts.redisUrl } : await testRedisTarget();
  const dir = mkdtempSync(join(tmpdir(), 'sgw-test-'));
  const [rg, ug] = testKeys();
  mkdirSync(join(dir, 'keys'));
  writeFileSync(join(dir, 'keys', 'rg.pem'), rg!.pem);
  writeFileSync(join(dir, 'keys', 'ug.pub.pem'), ug!.key.export({ type: 'pkcs1', format: 'pem' }) as string);
  writeFileSync(join(dir, 'keys', 'ug.pem'), ug!.pem);
  writeFileSync(join(dir, 'keys', 'rg.pub.pem'), rg!.key.export({ type: 'pkcs1', format: 'pem' }) as string);
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir);
  const base = opts.sameGatewayAs;
  const type = base?.gatewayKey.slice(0, 2).toUpperCase() ?? opts.type ?? 'RG';
  // A UG without a driver of its own gets an empty one: every UG mode is then short-circuited.
  const defaultDriver = type === 'UG' ? 'export {};\n' : `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`;
  if (!opts.noDriverFolder) writeDriver(dir, opts.driverSource ?? defaultDriver, opts.driverConfig ?? { STORAGE_DIR: storageDir }, opts.driverFile);
  if (opts.driverSecrets) {
    const key = createPublicKey(type === 'UG' ? ug!.key : rg!.key);
    writeFileSync(join(dir, 'driver', 'secrets.sealed.json'), sealSecrets(Buffer.from(JSON.stringify(opts.driverSecrets)), key));
  }
  const volumeId = base?.volumeId ?? opts.volumeId ?? (type === 'AG' ? BigInt(randomBytes(4).readUInt32BE()) + 100n : 3n);
  const ugId = opts.ugId ?? 10n;
  const gatewayId = base?.gatewayId ?? (type === 'UG' ? ugId : BigInt(randomBytes(4).readUInt32BE()) + 1000n);
  const peers = (opts.peers ?? []).map((p) => ({
    id: String(p.gatewayId), type: p.gatewayKey.slice(0, 2).toUpperCase(), user_id: '7', caps: Caps.READ_DATA | Caps.READ_METADATA,
    public_key: 'keys/rg.pub.pem', url: p.url,
  }));
  const ugPeer = { id: String(ugId), type: 'UG', user_id: '7', caps: Caps.READ_DATA | Caps.WRITE_DATA | Caps.READ_METADATA | Caps.WRITE_METADATA, public_key: 'keys/ug.pub.pem' };
  const port = base?.port ?? (await freePort());
  const config = {
    gateway: {
      type, id: String(gatewayId), user_id: '7', volume_id: String(volumeId), block_size: opts.blockSize ?? 4096, host: '127.0.0.1', port,
      private_key: type === 'UG' ? 'keys/ug.pem' : 'keys/rg.pem',
    },
    volume: {
      version: 1, cert_version: 1, ...(type === 'AG' || peers.some((p) => p.type === 'AG') ? { archive: true } : {}),
      gateways: [...(type === 'UG' ? [] : [ugPeer]), ...peers],
    },
    ...(type === 'UG' ? { ug: { token: UG_TEST_TOKEN } } : {}),
    ...(opts.embeddedRedis ? {} : { redis: redis.config }),
    ...(opts.noDriverFolder ? {} : { driver: 'driver' }),
    cache: { dir: 'cache', max_bytes: 64 << 20 },
    limits: { call_timeout_ms: 3000, request_timeout_ms: 5000, max_upload_bytes: 8 << 20 },
    actors: { concurrency: 8 },
    log: { level: 'warn' },
    ...opts.config,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return {
    dir, configFile: join(dir, 'config.json'), storageDir, gatewayId, gatewayKey: `${type.toLowerCase()}.${gatewayId}`, volumeId,
    rgKey: rg!.key, ugKey: ug!.key, ugId, port, url: `http://127.0.0.1:${port}`, redisUrl: typeof redis.config === 'string' ? redis.config : '',
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

export interface GatewayProcessOptions {
  /** Environment over the defaults (e.g. SGW_LOG_LEVEL); an undefined value removes a variable. */
  env?: Record<string, string | undefined>;
  /** Write the log lines (stdout) to this file descriptor instead of collecting them in output(). */
  stdoutFd?: number;
  /** A process group of its own, so killGroup() can kill -9 every process of the gateway at once. */
  detached?: boolean;
  /** More arguments of `sgw start`. */
  args?: string[];
}

/** `sgw start --config FILE [--roles R]` as a child process (its own process tree). */
export function startGatewayProcess(configFile: string, roles?: string, cwd?: string, opts: GatewayProcessOptions = {}): RunningGateway {
  // Killed with the test process, however it ends (ava kills a worker that times out).
  const [command, args] = tiedToParent(process.execPath, [CLI, 'start', '--config', configFile, ...(roles ? ['--roles', roles] : []), ...(opts.args ?? [])], 'KILL');
  const proc = spawn(command, args, {
    cwd, stdio: ['ignore', opts.stdoutFd ?? 'pipe', 'pipe'], detached: opts.detached ?? false,
    env: { ...process.env, SGW_LOG_LEVEL: process.env.SGW_TEST_LOG_LEVEL ?? 'warn', ...opts.env },
  });
  let out = '';
  proc.stdout?.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  return {
    proc,
    output: () => out,
    stop: () => stopChild(proc, 20_000),
  };
}

/** Options to run a gateway's config as another host would: with a state folder of its own (one gateway per folder). */
export function asAnotherHost(f: GatewayFolder, host: string): GatewayProcessOptions {
  return { env: { SGW_STATE_DIR: join(f.dir, `host-${host}`, 'state') } };
}

/** Stops a child process: SIGTERM, SIGKILL after graceMs; its exit code (null when killed by a signal). */
export function stopChild(proc: ChildProcess, graceMs = 15_000): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    proc.once('exit', (code) => { clearTimeout(kill); resolve(code); });
    proc.kill('SIGTERM');
  });
}

/**
 * Polls until probe() gives a value. The bound is only a backstop against a hang: on a loaded
 * 2-core machine a gateway's start (node, bundling its driver, actors) has taken over 20 s.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 90_000): Promise<T> {
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
export async function liveActors(redis: RedisClient, gateway: string, role: string): Promise<string[]> {
  return redis.zrangebyscore(keys.alive(gateway, role), Date.now(), '+inf');
}

/** Sends `signal` to one live actor of `role` and waits until another instance of the role is live. */
export async function signalActorAndAwaitAnother(redis: RedisClient, gateway: string, role: string, signal: NodeJS.Signals): Promise<void> {
  const [instance] = await liveActors(redis, gateway, role);
  const pid = Number(await redis.hget(keys.actor(gateway, instance!), 'pid'));
  if (!(pid > 0)) throw new Error(`no pid registered for the ${role} actor ${instance}`);
  process.kill(pid, signal);
  await waitFor(`a new ${role} actor`, async () => {
    const now = await liveActors(redis, gateway, role);
    return now.length > 0 && !now.includes(instance!);
  });
}

/**
 * Waits until the gateway answers /PING, every listed role has a live actor, and /ready says the
 * whole gateway serves (until then every driver call gets 503).
 */
export async function waitForGateway(f: GatewayFolder, redis: RedisClient, roles: string[] = ['driver:read', 'driver:write', 'driver:delete', 'driver:rename']): Promise<void> {
  await waitFor('gateway /PING', async () => (await fetch(`${f.url}/PING`)).status === 200);
  for (const role of roles) await waitFor(`a live ${role} actor`, async () => (await liveActors(redis, f.gatewayKey, role)).length > 0);
  await waitFor('gateway /ready', async () => (await fetch(`${f.url}/ready`)).status === 200);
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

/** The URL of the running private Redis of a gateway made with embeddedRedis, as `sgw status` finds it. */
export function embeddedRedis(f: GatewayFolder): string {
  return runningStateRedisUrl(loadConfig(f.configFile));
}

/** waitForGateway for a gateway on its private Redis, through a client of that Redis once it runs. */
export async function waitForEmbeddedGateway(f: GatewayFolder, roles?: string[]): Promise<void> {
  const redis = new Redis(await waitFor('the gateway\'s private redis-server', async () => embeddedRedis(f)));
  try {
    await waitForGateway(f, redis, roles);
  } finally {
    redis.disconnect();
  }
}

/** Pids of the live processes of a process group (a detached gateway: supervisor, actors, redis-server, ...). */
export function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state (Z: a zombie, already dead), fields[2] the process group
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** kill -9 of every process of a detached gateway at once, as a crash of the whole host would; waits until all are gone. */
export async function killGroup(gw: RunningGateway): Promise<void> {
  const pgid = gw.proc.pid!;
  process.kill(-pgid, 'SIGKILL');
  await waitFor(`every process of group ${pgid} to die`, async () => processGroup(pgid).length === 0);
}

export { processAlive } from '../../actors/supervisor/processes.js';

/** Every file under a folder, as paths relative to it. */
export function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}
