// An acquisition gateway publishing a bucket of a real S3-compatible server with the built-in
// s3-dataset driver, and a UG reading it: the objects under PREFIX become a tree, read back
// byte for byte (ranges across block boundaries too), and a REFRESH publishes objects added,
// changed and deleted at once. (Rescans are specified in s3-dataset-driver.test.ts; here they
// are set far apart, so that only the REFRESH can have published a change.)
import test from 'ava';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { sendControlPlane } from '../http/rg-client.js';
import { ReplyCodec, RequestType } from '../proto/messages.js';
import { cleanup, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, type GatewayFolder, type RunningGateway } from './support/gateway.js';
import { list, stat } from './support/ag.js';
import { testRedis } from './support/redis.js';
import { S3_DATASET_DRIVER_JS, startTestS3, type TestS3 } from './support/s3.js';
import { patternBytes, startUgVolume, type RunningVolume } from './support/ug.js';

const BS = 8192;
const BUCKET = 'dataset';
const objects: Record<string, Buffer> = {
  'pub/docs/a.txt': Buffer.from('first version of a\n'),
  'pub/docs/nested/b.bin': patternBytes(2 * BS + 5, 2),
  'pub/big.bin': patternBytes(5 * BS + 3, 3),
  'pub/empty': Buffer.alloc(0),
  'pub/marker/': Buffer.alloc(0), // a "folder" as consoles make them
  'other/outside.txt': Buffer.from('not under PREFIX'),
};

let s3: TestS3;
let redis: Redis;
let ag: GatewayFolder;
let agProc: RunningGateway;
let v: RunningVolume;

async function putObject(key: string, body: Buffer): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

test.before(async () => {
  s3 = await startTestS3();
  await s3.createBucket(BUCKET);
  for (const [key, body] of Object.entries(objects)) await putObject(key, body);
  redis = new Redis((await testRedis()).url);
  ag = await makeGatewayFolder({
    type: 'AG', blockSize: BS, ugId: 78n,
    ...s3.driverOptions(S3_DATASET_DRIVER_JS, { BUCKET, PREFIX: 'pub/', RESCAN_MS: 3_600_000 }),
    config: { limits: { call_timeout_ms: 15_000, request_timeout_ms: 60_000 } },
  });
  agProc = startGatewayProcess(ag.configFile);
  try {
    await waitForGateway(ag, redis, ['driver:read', 'crawl']);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${agProc.output()}`);
  }
  v = await startUgVolume(redis, { rgs: 0, extraPeers: [ag], volumeId: ag.volumeId, blockSize: BS, ugId: 78n });
  await waitFor('the crawl to publish the bucket', async () => (await stat(ag.url, '/big.bin')) && (await stat(ag.url, '/docs/nested/b.bin')));
});
test.after.always(async () => {
  await v?.stop();
  await agProc?.stop();
  if (ag) cleanup([ag.dir]);
  redis?.disconnect();
  await s3?.close();
});

/** Sends a signed REFRESH of a path to the AG, as a UG would; the reply's error_code. */
async function refresh(path: string): Promise<number> {
  const r = await sendControlPlane(ag.url, {
    volume_version: 1n, cert_version: 1n, volume_id: ag.volumeId, coordinator_id: ag.gatewayId, file_id: 1n, file_version: 1n,
    fs_path: path, user_id: 7n, src_gateway_id: ag.ugId, request_type: RequestType.REFRESH,
  }, ag.ugKey, null);
  if (r.status !== 200) throw new Error(`REFRESH ${path}: ${r.status} ${r.body.toString()}`);
  return ReplyCodec.decode(r.body).error_code;
}

test.serial('the objects under PREFIX are published as a tree: a directory for every prefix, nothing from elsewhere in the bucket', async (t) => {
  t.deepEqual((await list(ag.url, '/')).map((e) => [e.path, e.type, e.type === 'file' ? e.size : null]), [
    ['/big.bin', 'file', 5 * BS + 3], ['/docs', 'directory', null], ['/empty', 'file', 0], ['/marker', 'directory', null],
  ]);
  t.deepEqual((await list(ag.url, '/docs')).map((e) => [e.path, e.type]), [['/docs/a.txt', 'file'], ['/docs/nested', 'directory']]);
  t.deepEqual((await list(ag.url, '/docs/nested')).map((e) => [e.path, e.size]), [['/docs/nested/b.bin', 2 * BS + 5]]);
  t.is(await stat(ag.url, '/outside.txt'), null);
  t.is(await stat(ag.url, '/other'), null);
});

test.serial('a UG reads the objects back byte for byte, whole and by ranges across block boundaries', async (t) => {
  const big = await v.client.get('/big.bin');
  t.is(big.status, 200, big.body.toString());
  t.true(big.body.equals(objects['pub/big.bin']!));
  for (const [from, to] of [[BS - 1, 2 * BS], [3 * BS + 17, 5 * BS + 2], [0, 0]] as const) {
    const r = await v.client.get('/big.bin', { Range: `bytes=${from}-${to}` });
    t.is(r.status, 206);
    t.true(r.body.equals(objects['pub/big.bin']!.subarray(from, to + 1)), `bytes ${from}-${to}`);
  }
  t.true((await v.client.get('/docs/nested/b.bin')).body.equals(objects['pub/docs/nested/b.bin']!));
  const empty = await v.client.get('/empty');
  t.deepEqual([empty.status, empty.body.length], [200, 0]);
});

test.serial('a REFRESH publishes objects added, changed and deleted at once, and the UG reads the new bytes', async (t) => {
  const before = (await stat(ag.url, '/docs/a.txt'))!;
  const changed = patternBytes(3 * BS + 1, 5);
  const added = patternBytes(BS + 2, 6);
  await putObject('pub/docs/a.txt', changed);
  await putObject('pub/docs/added.bin', added);
  await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'pub/docs/nested/b.bin' }));
  t.is(await stat(ag.url, '/docs/added.bin'), null, 'nothing is published before the REFRESH (rescans are an hour apart)');

  t.is(await refresh('/docs'), 0);
  const after = (await stat(ag.url, '/docs/a.txt'))!;
  t.is(after.size, changed.length);
  t.not(after.file_version, before.file_version, 'a changed object is a new version');
  t.truthy(await stat(ag.url, '/docs/added.bin'));
  t.is(await stat(ag.url, '/docs/nested/b.bin'), null, 'a deleted object is gone');
  t.is(await stat(ag.url, '/docs/nested'), null, 'and so is the directory it alone made');
  t.truthy(await stat(ag.url, '/big.bin'), 'what lies outside the refreshed path is left alone');

  t.true((await v.client.get('/docs/a.txt')).body.equals(changed));
  const range = await v.client.get('/docs/a.txt', { Range: `bytes=${BS - 3}-${2 * BS + 3}` });
  t.true(range.body.equals(changed.subarray(BS - 3, 2 * BS + 4)));
  t.true((await v.client.get('/docs/added.bin')).body.equals(added));
  t.is((await v.client.get('/docs/nested/b.bin')).status, 404);
  // A path with ".." is refused by the gateway before any driver sees it (issue 15, item 9).
  await t.throwsAsync(refresh('/docs/../..'), { message: /^REFRESH \/docs\/\.\.\/\.\.: 400 fs_path /ms });
});
