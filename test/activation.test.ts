// actors.activation "none": `sgw start` only publishes the driver and says what to run; the actors
// appear when something else runs `sgw actor <role>` (here the test, as a service manager would).
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { formatBlockUrl } from '../http/data-url.js';
import { keys } from '../queues/names.js';
import { testRedis } from './support/redis.js';
import {
  CLI, cleanup, DISK_DRIVER_JS, liveActors, makeGatewayFolder, waitFor, writeDriver, type GatewayFolder, stopChild,
} from './support/gateway.js';

const run = promisify(execFile);
const ROLES = ['http', 'cache', 'driver:read', 'driver:write', 'driver:delete', 'driver:rename'];
const dirs: string[] = [];
const procs: ChildProcess[] = [];
let redis: Redis;

test.before(async () => {
  redis = new Redis((await testRedis()).url);
});
test.after.always(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  redis?.disconnect();
  cleanup(dirs);
});

async function folder(activation: string, extra: Record<string, unknown> = {}): Promise<GatewayFolder> {
  const f = await makeGatewayFolder({ config: { actors: { concurrency: 4, activation }, ...extra } });
  dirs.push(f.dir);
  return f;
}

/** `sgw actor ...` in the foreground, as systemd would run it (no IPC channel to a supervisor). */
function actor(f: GatewayFolder, ...args: string[]): ChildProcess {
  const p = spawn(process.execPath, [CLI, 'actor', ...args, '--config', f.configFile], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SGW_LOG_LEVEL: 'warn' } });
  procs.push(p);
  return p;
}


test('activation none: sgw start publishes the driver, starts no actor, and says what to run', async (t) => {
  const f = await folder('none');
  const { stdout, stderr } = await run(process.execPath, [CLI, 'start', '--config', f.configFile], { timeout: 60_000, env: { ...process.env, SGW_LOG_LEVEL: 'warn' } });
  t.regex(stderr, /activation is "none", so no actor is started here/);
  t.true(stderr.includes(`sgw actor driver:read --config ${f.configFile}`), stderr);
  t.true(stderr.includes(`sgw actor http --with-cache --config ${f.configFile}`));
  t.is(stdout, '');
  t.regex((await redis.get(keys.driverCurrent(f.gatewayKey))) ?? '', /^[0-9a-f]{64}$/, 'the driver was published');
  for (const role of ROLES) t.deepEqual(await liveActors(redis, f.gatewayKey, role), [], `no ${role} actor`);
  t.is((await fetch(`${f.url}/PING`).catch(() => null))?.status, undefined, 'nothing listens on the gateway port');

  // The service manager's part: one process per actor.
  const read = actor(f, 'driver:read');
  // The gateway is ready (and serves) once every mode of its driver has a live actor.
  const others = ['driver:write', 'driver:delete', 'driver:rename'].map((role) => actor(f, role));
  const http = actor(f, 'http', '--with-cache');
  const [instance] = await waitFor('the external driver:read actor in the registry', async () => {
    const ids = await liveActors(redis, f.gatewayKey, 'driver:read');
    return ids.length > 0 ? ids : null;
  });
  t.is(await redis.hget(keys.actor(f.gatewayKey, instance!), 'pid'), String(read.pid), 'registered by the process we ran');
  await waitFor('the external actors ready', async () => (await fetch(`${f.url}/ready`)).status === 200);
  const miss = await fetch(formatBlockUrl(f.url, { volume_id: 3n, fs_path: '/a', file_id: 1n, file_version: 1n, block_id: 0n, block_version: 0n }));
  t.is(miss.status, 404, 'the external driver:read actor answered: no such chunk');
  t.is(await stopChild(read), 0);
  t.is(await stopChild(http), 0);
  await Promise.all(others.map((p) => stopChild(p)));
  t.deepEqual(await liveActors(redis, f.gatewayKey, 'driver:read'), [], 'gone from the registry after a clean stop');
});

test('activation none: a second actor owning the same chunk store is refused, naming the folder and the first', async (t) => {
  const f = await folder('none');
  const first = actor(f, 'cache');
  await waitFor('the cache actor in the registry', async () => (await liveActors(redis, f.gatewayKey, 'cache')).length > 0);
  const second = await run(process.execPath, [CLI, 'actor', 'cache', '--config', f.configFile], { timeout: 30_000 }).then(() => null, (e: { code: number; stderr: string }) => e);
  t.is(second?.code, 1);
  t.true(second!.stderr.includes(`${join(f.dir, 'cache')} is in use by sgw actor cache (pid ${first.pid}`), second!.stderr);
  t.is(await stopChild(first), 0);
});

test('activation none refuses the private redis-server with a clear message', async (t) => {
  const f = await folder('none', { redis: null });
  const err = await run(process.execPath, [CLI, 'start', '--config', f.configFile], { timeout: 30_000 }).then(() => null, (e: { code: number; stderr: string }) => e);
  t.is(err?.code, 1);
  t.regex(err!.stderr, /activation is "none".*set "redis"/);
});

test('an unknown activation is a config error naming the choices', async (t) => {
  const f = await folder('systemd');
  const err = await run(process.execPath, [CLI, 'start', '--config', f.configFile], { timeout: 30_000 }).then(() => null, (e: { code: number; stderr: string }) => e);
  t.is(err?.code, 1);
  t.regex(err!.stderr, /actors\.activation: must be one of "fork", "none"/);
});

test('a driver actor run by a service manager exits for a restart when a new version is published', async (t) => {
  const f = await folder('none');
  await run(process.execPath, [CLI, 'driver', 'publish', '--config', f.configFile], { timeout: 60_000 });
  const read = actor(f, 'driver:read');
  await waitFor('the external driver:read actor', async () => (await liveActors(redis, f.gatewayKey, 'driver:read')).length > 0);
  const exited = new Promise<number | null>((resolve) => read.once('exit', resolve));
  writeDriver(f.dir, `export * from ${JSON.stringify(DISK_DRIVER_JS)};\nexport const edition = 2;\n`, { STORAGE_DIR: f.storageDir });
  const { stdout } = await run(process.execPath, [CLI, 'driver', 'publish', '--config', f.configFile], { timeout: 60_000 });
  t.regex(stdout, /published/);
  t.is(await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 20_000))]), 75, 'EX_TEMPFAIL: restart me');
});
