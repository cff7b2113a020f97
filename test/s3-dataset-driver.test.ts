// The built-in s3-dataset (AG) driver called directly against a real S3-compatible server, with
// the gateway's side of crawl() recording the commands: what a first listing publishes, what a
// rescan hands over after objects were added, changed (ETag) and deleted, that an unreachable
// store deletes nothing, and ranged reads. Serial: the driver's published tree is per process.
import test from 'ava';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ChunkSink, CRAWL_HANDLER, DriverRequestType, Errno, IoType, type DriverRequest, type MetadataCommand } from '../drivers/helpers.js';
import * as dataset from '../drivers/builtin/s3-dataset/driver.js';
import { startTestS3, S3_SECRETS, type TestS3 } from './support/s3.js';

const BUCKET = 'scan';
let s3: TestS3;
let config: Record<string, unknown>;
const sent: MetadataCommand[] = [];
const stderr = process.stderr.write.bind(process.stderr);
let logged = '';

test.before(async () => {
  s3 = await startTestS3();
  await s3.createBucket(BUCKET);
  config = { ENDPOINT: s3.endpoint, REGION: 'us-east-1', FORCE_PATH_STYLE: true, BUCKET, PREFIX: 'data/', RESCAN_MS: 10 };
  (globalThis as Record<symbol, unknown>)[CRAWL_HANDLER] = async (cmd: MetadataCommand) => { sent.push(cmd); return 0; };
  process.stderr.write = ((chunk: string | Uint8Array) => { logged += chunk.toString(); return true; }) as typeof process.stderr.write;
});
test.after.always(async () => {
  process.stderr.write = stderr;
  dataset.driver_shutdown();
  await s3?.close();
});

async function put(key: string, body: string | Buffer): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

/** The commands one next_dataset() call hands the gateway, as "cmd ftype path size". */
async function nextDataset(): Promise<string[]> {
  sent.length = 0;
  if (!(await dataset.next_dataset(config, S3_SECRETS))) throw new Error('next_dataset said the dataset is complete');
  return sent.map((c) => `${c.cmd} ${c.ftype} ${c.path}${c.cmd !== 'delete' && c.ftype === 'file' ? ` ${c.size}` : ''}`);
}

function readRequest(path: string, offset: bigint, len: bigint): DriverRequest {
  return {
    volume_id: 1n, user_id: 1n, coordinator_id: 1n, file_id: 1n, file_version: 1n, request_type: DriverRequestType.BLOCK,
    path, block_id: 0n, block_version: 0n, io_type: IoType.READ, offset, len, block_size: len, io_context: 1n,
  };
}

test.serial('driver_init checks the bucket; the first listing publishes every object, parents first', async (t) => {
  await put('data/a/b/one.txt', 'one');
  await put('data/a/two.txt', 'two!');
  await put('data/top', 'top level');
  await put('elsewhere/x', 'not published');
  t.true(await dataset.driver_init(config, S3_SECRETS));
  t.deepEqual(await nextDataset(), [
    'put directory /a', 'put file /top 9', 'put directory /a/b', 'put file /a/two.txt 4', 'put file /a/b/one.txt 3',
  ]);
  t.deepEqual(await nextDataset(), [], 'a rescan of an unchanged bucket hands over nothing');
});

test.serial('a rescan hands over what changed: deletions deepest first, a changed ETag as an update, new objects as puts', async (t) => {
  await put('data/top', 'TOP LEVEL'); // same size, other bytes: only the ETag tells
  await put('data/a/c/new.bin', 'new');
  await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'data/a/b/one.txt' }));
  t.deepEqual(await nextDataset(), [
    'delete file /a/b/one.txt', 'delete directory /a/b', 'update file /top 9', 'put directory /a/c', 'put file /a/c/new.bin 3',
  ]);
});

test.serial('a listing that fails (S3 stopped) changes nothing; the next one after S3 returns carries on', async (t) => {
  await s3.stop();
  logged = '';
  t.deepEqual(await nextDataset(), [], 'an outage is not "everything was deleted"');
  t.regex(logged, /listing the bucket failed; nothing changed/);
  await s3.start();
  await put('data/after', 'after the outage');
  t.deepEqual(await nextDataset(), ['put file /after 16']);
});

test.serial('read serves byte ranges with ranged GETs; a missing object is -ENOENT, a path with ".." -EACCES', async (t) => {
  const bytes = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff));
  await put('data/r.bin', bytes);
  const read = async (path: string, offset: bigint, len: bigint) => {
    const sink = new ChunkSink();
    const rc = await dataset.read(readRequest(path, offset, len), sink, config, S3_SECRETS);
    return { rc, bytes: await sink.collect() };
  };
  t.deepEqual(await read('/r.bin', 4096n, 4096n), { rc: 0, bytes: bytes.subarray(4096, 8192) });
  t.deepEqual(await read('/r.bin', 8192n, 4096n), { rc: 0, bytes: bytes.subarray(8192) }, 'the last block is short');
  t.deepEqual(await read('/r.bin', 20_480n, 4096n), { rc: 0, bytes: Buffer.alloc(0) }, 'past the end (the object shrank): no bytes');
  t.is((await read('/missing', 0n, 4096n)).rc, -Errno.ENOENT);
  t.is((await read('/a/../r.bin', 0n, 4096n)).rc, -Errno.EACCES);
});
