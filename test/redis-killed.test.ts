// kill -9 of a gateway's private redis-server alone, under write load: sgw start starts it again on
// the same port, writes resume by themselves, and with state.appendfsync "always" every write that
// was acknowledged before the kill is still there (Redis 7.0 writes and fsyncs the append-only file
// before it answers; under "everysec" it may answer first while a background fsync runs: docs/state.md).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { stateRedisPaths } from '../actors/supervisor/state-redis.js';
import { loadConfig } from '../proto/config/config.js';
import { testRedis } from './support/redis.js';
import { processAlive, waitFor } from './support/gateway.js';
import { patternBytes, startUgVolume } from './support/ug.js';

interface EntryJson { path: string }

function serverPid(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

test('kill -9 of the private redis-server under UG writes: it is started again, writes resume, and every acknowledged file survives', async (t) => {
  const redis = new Redis((await testRedis()).url);
  const v = await startUgVolume(redis, {
    rgs: 1, blockSize: 4096, ugEmbeddedRedis: true, detached: true,
    ugConfig: { state: { appendfsync: 'always' }, limits: { call_timeout_ms: 5000, request_timeout_ms: 10_000, max_upload_bytes: 16 << 20 } },
  });
  t.teardown(async () => {
    await v.stop();
    redis.disconnect();
  });
  const pidFile = stateRedisPaths(loadConfig(v.ug.configFile)).pid;
  const acknowledged = new Map<string, Buffer>();
  const statuses: Record<number, number> = {};
  let killedAt = Infinity;
  let afterKill = 0;
  let running = true;
  const writers = Array.from({ length: 3 }, async (_, w) => {
    for (let n = 0; running; n++) {
      const path = `/load/w${w}-${n}.bin`;
      const data = patternBytes(1000 + 4096 * (n % 3), w * 10_000 + n);
      const started = Date.now();
      const put = await v.client.put(path, data).catch(() => null);
      const status = put?.status ?? 0;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === 201) {
        acknowledged.set(path, data);
        if (started > killedAt) afterKill++;
      } else {
        await new Promise((r) => setTimeout(r, 100)); // Redis is away: don't spin
      }
    }
  });
  try {
    await waitFor('20 acknowledged writes', async () => acknowledged.size >= 20);
    const first = serverPid(pidFile)!;
    killedAt = Date.now();
    process.kill(first, 'SIGKILL');
    await waitFor('a new redis-server', async () => { const p = serverPid(pidFile); return p !== null && p !== first; });
    await waitFor('10 writes acknowledged after the kill', async () => afterKill >= 10);
  } finally {
    running = false;
    await Promise.all(writers);
  }
  t.log(`statuses ${JSON.stringify(statuses)}; ${acknowledged.size} acknowledged, ${afterKill} of them after the kill`);
  const listed = new Set((await v.client.list('/load')).json<{ entries: EntryJson[] }>().entries.map((e) => e.path));
  for (const [path, data] of acknowledged) {
    t.true(listed.has(path), `${path} is listed`);
    const got = await v.client.get(path);
    t.is(got.status, 200, `${path}: ${got.body.toString()}`);
    t.true(got.body.equals(data), `${path} reads back byte-identical`);
  }
});
