// A UG reading files an acquisition gateway publishes (built-in dataset driver): the AG's fresh
// manifests and signed blocks are verified and read like any other file, and the AG's files
// (an archive volume) are read-only for the UG.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DATASET_DRIVER_JS, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, cleanup, type GatewayFolder, type RunningGateway } from './support/gateway.js';
import { testRedis } from './support/redis.js';
import { patternBytes, startUgVolume, type RunningVolume } from './support/ug.js';

const BS = 8192;
const dataset = mkdtempSync(join(tmpdir(), 'sgw-ug-dataset-'));
const big = patternBytes(5 * BS + 3, 41);
mkdirSync(join(dataset, 'pub'));
writeFileSync(join(dataset, 'pub', 'big.bin'), big);
writeFileSync(join(dataset, 'pub', 'empty'), '');

let redis: Redis;
let ag: GatewayFolder;
let agProc: RunningGateway;
let v: RunningVolume;
test.before(async () => {
  redis = new Redis((await testRedis()).url);
  ag = await makeGatewayFolder({
    type: 'AG', blockSize: BS, ugId: 77n,
    driverSource: `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n`, driverConfig: { DATASET_DIR: dataset, RESCAN_MS: 500 },
    config: { limits: { call_timeout_ms: 15_000, request_timeout_ms: 60_000 } },
  });
  agProc = startGatewayProcess(ag.configFile);
  await waitForGateway(ag, redis, ['driver:read', 'crawl']);
  v = await startUgVolume(redis, { rgs: 0, extraPeers: [ag], volumeId: ag.volumeId, blockSize: BS, ugId: 77n });
});
test.after.always(async () => {
  await v?.stop();
  await agProc?.stop();
  if (ag) cleanup([ag.dir]);
  rmSync(dataset, { recursive: true, force: true });
  redis?.disconnect();
});

test('a file an AG published reads through the UG byte for byte, whole and by range', async (t) => {
  await waitFor('the crawl to publish /pub/big.bin', async () => (await v.client.stat('/pub/big.bin')).status === 200);
  const e = (await v.client.stat('/pub/big.bin')).json<{ entry: { coordinator_id: string; size: number } }>().entry;
  t.is(e.coordinator_id, String(ag.gatewayId), 'the AG coordinates what it publishes');
  const got = await v.client.get('/pub/big.bin');
  t.is(got.status, 200, got.body.toString());
  t.true(got.body.equals(big));
  const r = await v.client.get('/pub/big.bin', { Range: `bytes=${BS - 1}-${2 * BS}` });
  t.is(r.status, 206);
  t.true(r.body.equals(big.subarray(BS - 1, 2 * BS + 1)));
  await waitFor('the crawl to publish /pub/empty', async () => (await v.client.stat('/pub/empty')).status === 200);
  const empty = await v.client.get('/pub/empty');
  t.is(empty.status, 200);
  t.is(empty.body.length, 0);
});

test('the AG\'s files and its archive volume are read-only for the UG', async (t) => {
  await waitFor('the crawl to publish /pub/big.bin', async () => (await v.client.stat('/pub/big.bin')).status === 200);
  const over = await v.client.put('/pub/big.bin', Buffer.from('x'));
  t.is(over.status, 403);
  t.regex(over.body.toString(), /archive|read-only/);
  t.is((await v.client.put('/pub/new.bin', Buffer.from('x'))).status, 403);
  t.is((await v.client.rm('/pub/big.bin')).status, 403);
  t.is((await v.client.mv('/pub/big.bin', '/pub/moved')).status, 403);
  t.is((await v.client.stat('/pub/new.bin')).status, 404);
  t.true((await v.client.get('/pub/big.bin')).body.equals(big), 'unchanged');
});
