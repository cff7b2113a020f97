// `sgw status` against a running gateway: its actors from the registry, queue depths from BullMQ,
// the chunk store's usage published by its owner, and Redis memory; as tables and as JSON.
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { formatDuration, table, type GatewayStatus } from '../actors/cli/status.js';
import { keys } from '../queues/names.js';
import { CLI, fileRef, liveActors, waitFor } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const run = promisify(execFile);
const gateway = gatewayPerFile();
const BLOCK = Buffer.alloc(3000, 9);

test.serial.before('a chunk written and read back, so the cache holds it', async () => {
  const { f, redis } = gateway;
  const file = fileRef(f);
  const { blocks, data } = layOutChunks([{ block: { block_id: 1n, block_version: 1n, chunk_type: ChunkType.BLOCK, logical_offset: 0n, logical_len: 4096n }, bytes: BLOCK }]);
  const put = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data, f.rgKey);
  if (put.status !== 200) throw new Error(`PUTCHUNKS answered ${put.status}`);
  const url = formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: 1n, block_version: 1n });
  for (let i = 0; i < 3; i++) if ((await fetch(url)).status !== 200) throw new Error('GET of the written block failed');
  // The cache's owner publishes its usage with its next beat.
  const [cache] = await liveActors(redis, f.gatewayKey, 'cache');
  await waitFor('the cache usage in the registry', async () => Number(await redis.hget(keys.actor(f.gatewayKey, cache!), 'usage.entries')) > 0);
});

test('sgw status --json: actors, queue depths, cache usage and Redis memory', async (t) => {
  const { f, redis } = gateway;
  const { stdout } = await run(process.execPath, [CLI, 'status', '--config', f.configFile, '--json'], { timeout: 30_000 });
  const s = JSON.parse(stdout) as GatewayStatus;
  t.is(s.gateway, f.gatewayKey);

  const version = (await redis.get(keys.driverCurrent(f.gatewayKey)))!;
  for (const role of ['http', 'cache', 'driver:read', 'driver:write', 'driver:delete', 'driver:rename']) {
    const registered = await liveActors(redis, f.gatewayKey, role);
    const listed = s.actors.filter((a) => a.role === role);
    t.deepEqual(listed.map((a) => a.instance).sort(), registered.sort(), `${role}: every live instance, once`);
  }
  for (const a of s.actors) {
    t.true(Number.isInteger(a.pid) && a.pid > 0);
    t.true(a.uptime_s >= 0);
    t.is(a.version, a.role.startsWith('driver:') ? version.slice(0, 12) : '');
  }
  const write = s.actors.filter((a) => a.role === 'driver:write');
  t.true(write.reduce((n, a) => n + a.jobs, 0) >= 1, 'the write actor counted its job');

  const names = s.queues.map((q) => q.name);
  t.true(names.includes(`${f.gatewayKey}.read`) && names.includes(`${f.gatewayKey}.write`), names.join(', '));
  t.true(names.every((n) => n.startsWith(`${f.gatewayKey}.`)), 'only this gateway\'s queues');
  const writeQueue = s.queues.find((q) => q.name === `${f.gatewayKey}.write`)!;
  t.true(writeQueue.completed >= 1);
  t.is(writeQueue.waiting + writeQueue.active + writeQueue.failed, 0, 'nothing left behind');

  t.is(s.cache.length, 1);
  t.true(s.cache[0]!.entries >= 1);
  t.true(s.cache[0]!.bytes >= BLOCK.length, 'the cached chunk counts in the bytes used');
  t.is(s.cache[0]!.max_bytes, 64 << 20, 'the budget of the config');
  t.true(s.cache[0]!.hits >= 1, 'the repeated GETs hit');

  t.true(s.redis_memory.used_bytes > 0);
  t.is(s.redis_memory.policy, 'noeviction');
});

test('sgw status prints tables a person can read', async (t) => {
  const { f } = gateway;
  const { stdout, stderr } = await run(process.execPath, [CLI, 'status', '--config', f.configFile], { timeout: 30_000 });
  t.regex(stdout, new RegExp(`^gateway ${f.gatewayKey.replace('.', '\\.')} `));
  t.regex(stdout, /^ROLE +HOST +PID +VERSION +UPTIME +JOBS$/m);
  t.regex(stdout, /^driver:read +\S+ +\d+ +[0-9a-f]{12} +\d+s +\d+$/m);
  t.regex(stdout, /^QUEUE +WAITING +ACTIVE +DELAYED +FAILED +COMPLETED$/m);
  t.regex(stdout, new RegExp(`^${f.gatewayKey.replace('.', '\\.')}\\.write +0 +0 +0 +0 +[1-9]\\d*$`, 'm'));
  t.regex(stdout, /^REDIS {2}used \d/m);
  t.is(stderr, '', 'no progress line when stderr is not a terminal');
});

test('sgw status says clearly when Redis cannot be reached, and does not hang', async (t) => {
  const { f } = gateway;
  const config = JSON.parse(readFileSync(f.configFile, 'utf8')) as Record<string, unknown>;
  config.redis = `redis://user:hunter2@127.0.0.1:${await freePort()}`;
  const file = join(f.dir, 'status-no-redis.json');
  writeFileSync(file, JSON.stringify(config));
  const err = await run(process.execPath, [CLI, 'status', '--config', file], { timeout: 30_000 }).then(() => null, (e: { code: number; stderr: string }) => e);
  t.is(err?.code, 1);
  t.regex(err!.stderr, /Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1:\d+\/? is not reachable/);
  t.false(err!.stderr.includes('hunter2'), 'the password is not printed');
});

test('durations and tables', (t) => {
  t.is(formatDuration(59), '59s');
  t.is(formatDuration(61), '1m01s');
  t.is(formatDuration(3 * 3600 + 120), '3h02m');
  t.is(formatDuration(2 * 86400 + 3600), '2d01h');
  t.is(table(['A', 'N'], [['x', 5], ['long', 100]]), 'A       N\nx       5\nlong  100');
});
