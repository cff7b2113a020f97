// With Redis gone, a user gateway and an acquisition gateway answer 503 with Retry-After, never a
// 500 and never a hang, like the replica gateway does (redis-down.test.ts).
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer } from '../actors/supervisor/embedded-redis.js';
import { testRedis } from './support/redis.js';
import { cleanup, DATASET_DRIVER_JS, makeGatewayFolder, rawGet, startGatewayProcess, waitFor, waitForGateway, type RunningGateway } from './support/gateway.js';
import { fileUrl, stat } from './support/ag.js';
import { patternBytes, startUgVolume } from './support/ug.js';

test('with Redis stopped, the UG and the AG answer 503 with Retry-After to reads, writes and listings', async (t) => {
  const server = await testRedis();
  const redis = new Redis(server.url);
  redis.on('error', () => {});
  const dataset = mkdtempSync(join(tmpdir(), 'sgw-dataset-'));
  mkdirSync(join(dataset, 'a'));
  writeFileSync(join(dataset, 'a', 'x'), 'published by the AG');
  const ag = await makeGatewayFolder({ type: 'AG', driverSource: `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n`, driverConfig: { DATASET_DIR: dataset, RESCAN_MS: 60_000 } });
  const vol = await startUgVolume(redis, { rgs: 1 });
  let agProc: RunningGateway | undefined;
  try {
    agProc = startGatewayProcess(ag.configFile);
    await waitForGateway(ag, redis, ['driver:read', 'crawl']);
    const entry = await waitFor('the AG file in the namespace', () => stat(ag.url, '/a/x'));
    t.is((await vol.client.put('/here.bin', patternBytes(1000, 1))).status, 201);
    redis.disconnect();

    await server.stop();
    const refused = (what: string, status: number, retryAfter: string | null | undefined) => {
      t.is(status, 503, what);
      t.truthy(retryAfter, `${what}: Retry-After`);
    };
    for (const [what, answer] of [
      ['UG GET of a file', await vol.client.get('/here.bin')],
      ['UG stat', await vol.client.stat('/here.bin')],
      ['UG list', await vol.client.list('/')],
      ['UG PUT', await vol.client.put('/new.bin', patternBytes(1000, 2))],
      ['UG rename', await vol.client.mv('/here.bin', '/there.bin')],
      ['UG DELETE', await vol.client.rm('/here.bin')],
    ] as const) refused(what, answer.status, answer.headers.get('retry-after'));
    for (const [what, path] of [['AG namespace', '/NAMESPACE/a?list'], ['AG block (not cached)', `${fileUrl(ag.volumeId, entry)}/0.1`]] as const) {
      const r = await rawGet(ag.url, path);
      refused(what, r.status, r.headers['retry-after'] as string | undefined);
    }
  } finally {
    // Redis back on its port, so the gateways stop as quickly as usual.
    const again = await startRedisServer({ quiet: true, port: server.port });
    await Promise.all([agProc?.stop(), vol.stop()]);
    await again.stop();
    cleanup([ag.dir]);
    rmSync(dataset, { recursive: true, force: true });
  }
});
