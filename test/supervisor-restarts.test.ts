// An actor the supervisor did not stop is started again, even when it exited cleanly: an actor
// someone sent SIGTERM to leaves its gateway without that role otherwise. Only an actor that says
// it is not needed (its driver version lacks its mode) stays down. And an actor that stops on its
// own exits even when its Redis stopped answering, so that a fresh one can take over.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { keys } from '../queues/names.js';
import { startRedisServer } from '../actors/supervisor/embedded-redis.js';
import { testRedis } from './support/redis.js';
import { cleanup, DATASET_DRIVER_JS, liveActors, makeGatewayFolder, type FolderOptions, signalActorAndAwaitAnother, startGatewayProcess, waitFor, waitForGateway } from './support/gateway.js';

test('an actor sent SIGTERM by someone else exits cleanly and is started again', async (t) => {
  const redis = new Redis((await testRedis()).url);
  const f = await makeGatewayFolder();
  const gw = startGatewayProcess(f.configFile);
  try {
    await waitForGateway(f, redis, ['http', 'driver:read']);
    const restartsBefore = Number(await redis.hget(keys.restarts(f.gatewayKey), 'driver:read') ?? 0);
    await signalActorAndAwaitAnother(redis, f.gatewayKey, 'driver:read', 'SIGTERM');
    t.is(Number(await redis.hget(keys.restarts(f.gatewayKey), 'driver:read')) - restartsBefore, 1, 'counted as a restart');
    t.regex(gw.output(), /actor exited; restarting/);

    // The http actor too: the gateway answers again without anyone restarting it.
    await signalActorAndAwaitAnother(redis, f.gatewayKey, 'http', 'SIGTERM');
    const ping = await waitFor('PING answered', async () => (await fetch(`${f.url}/PING`).catch(() => null))?.status === 200);
    t.true(ping);
  } finally {
    await gw.stop();
    redis.disconnect();
    cleanup([f.dir]);
  }
});

// Published, the module has serialize; in an actor process it has not (it looks at its command
// line): the serialize actor finds its mode missing and says so before it exits.
const VANISHING_SERIALIZE = `
export function read_chunk(request, chunk_fd) { chunk_fd.write(Buffer.from('ok')); return 0; }
export function write_chunk() { return 0; }
export function delete_chunk() { return 0; }
export function rename_hint() { return 0; }
export const serialize = process.argv.includes('actor') ? undefined : (request, bytes) => bytes;
`;

test('an actor whose driver version lacks its mode says it is not needed and is not started again', async (t) => {
  const redis = new Redis((await testRedis()).url);
  const f = await makeGatewayFolder({ driverSource: VANISHING_SERIALIZE });
  const gw = startGatewayProcess(f.configFile, undefined, undefined, { env: { SGW_LOG_LEVEL: 'info' } });
  try {
    // (Not ready as a whole: its reads wait for a serialize actor that will not come.)
    await waitFor('the read actor', async () => (await liveActors(redis, f.gatewayKey, 'driver:read')).length > 0);
    await waitFor('the serialize actor to say it is not needed', async () => /not needed by this driver version; not restarted/.test(gw.output()));
    // It stays down: no restart is counted for it.
    t.is(await redis.hget(keys.restarts(f.gatewayKey), 'driver:serialize'), null);
    t.is((gw.output().match(/does not implement the mode/g) ?? []).length, 1, 'started once');
    t.deepEqual(await liveActors(redis, f.gatewayKey, 'driver:serialize'), []);
  } finally {
    await gw.stop();
    redis.disconnect();
    cleanup([f.dir]);
  }
});

/**
 * Freezes the gateway's own Redis (SIGSTOP: connections open and silent), sends an actor of `role`
 * SIGTERM, and checks that its stop, which waits on Redis, ends anyway with `said` in the log; then,
 * Redis thawed, that a fresh actor of the role is live.
 */
async function stopWhileRedisFrozen(t: ExecutionContext, folder: FolderOptions, role: string, said: RegExp): Promise<void> {
  const server = await startRedisServer({ quiet: true });
  const redis = new Redis(server.url);
  const f = await makeGatewayFolder({ ...folder, redisUrl: server.url, config: { limits: { call_timeout_ms: 1000, request_timeout_ms: 2000 } } });
  const gw = startGatewayProcess(f.configFile, undefined, undefined, { env: { SGW_LOG_LEVEL: 'info' } });
  let frozen = false;
  const thaw = () => { if (frozen) process.kill(server.pid, 'SIGCONT'); frozen = false; };
  try {
    await waitForGateway(f, redis, ['http', role]);
    const [instance] = await liveActors(redis, f.gatewayKey, role);
    const pid = Number(await redis.hget(keys.actor(f.gatewayKey, instance!), 'pid'));
    process.kill(server.pid, 'SIGSTOP');
    frozen = true;
    process.kill(pid, 'SIGTERM');
    await waitFor(`the ${role} actor to exit while Redis is frozen`, async () => !alive(pid));
    t.true(frozen, 'Redis was frozen all along');
    t.regex(gw.output(), said);
    thaw();
    await waitFor(`a fresh ${role} actor`, async () => {
      const now = await liveActors(redis, f.gatewayKey, role);
      return now.length > 0 && !now.includes(instance!);
    });
  } finally {
    thaw();
    await gw.stop();
    redis.disconnect();
    await server.stop();
    cleanup([f.dir]);
  }
}

test('a driver actor whose Redis stopped answering still exits when stopped, and a fresh one takes over once Redis answers', async (t) => {
  // Its stop waits on Redis (the heartbeat's removal, the queue's close): bounded, it exits.
  await stopWhileRedisFrozen(t, {}, 'driver:delete', /driver actor stop is taking too long; exiting/);
});

test('a crawl actor whose Redis stopped answering still exits when stopped, and a fresh one takes over once Redis answers', async (t) => {
  // Its stop waits on Redis too (heartbeats, the refresh worker, the lease's release).
  const dataset = mkdtempSync(join(tmpdir(), 'sgw-frozen-crawl-'));
  writeFileSync(join(dataset, 'f'), 'published');
  try {
    const driverSource = `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n`;
    await stopWhileRedisFrozen(t, { type: 'AG', driverSource, driverConfig: { DATASET_DIR: dataset } }, 'crawl', /crawl actor stop is taking too long; exiting/);
  } finally {
    cleanup([dataset]);
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
