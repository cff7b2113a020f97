// A user gateway writing and reading files through replica gateways on the built-in S3 driver
// (each RG its own PREFIX in one bucket of a real S3-compatible server): a multi-block file goes
// out as objects, reads back byte for byte, whole and by range, and an overwrite deletes the old
// version's objects.
import test from 'ava';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { patternBytes } from './support/ug.js';
import { ugVolumePerFile } from './support/ug-per-file.js';
import { S3_DRIVER_JS, startTestS3, type TestS3 } from './support/s3.js';

const BS = 65536;
const BUCKET = 'ug-volume';
let s3: TestS3 | undefined;
// Registered first, so the server runs before the volume's hook starts the gateways.
test.serial.before(async () => {
  s3 = await startTestS3();
  await s3.createBucket(BUCKET);
});
const vol = ugVolumePerFile(() => ({ blockSize: BS, rgFolder: (i) => s3!.driverOptions(S3_DRIVER_JS, { BUCKET, PREFIX: `rg${i}/` }) }));
test.after.always(async () => {
  await s3?.close();
});

interface EntryJson { file_id: string; file_version: string; size: number }

/** Keys under a prefix of the bucket. */
async function keysUnder(prefix: string): Promise<string[]> {
  const r = await s3!.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

test.serial('a multi-block file written through the UG lands as objects on every S3 RG and reads back byte for byte, whole and by range', async (t) => {
  const { client, rgs } = vol.v;
  const data = patternBytes(5 * BS + 123, 9);
  const put = await client.put('/s3/five.bin', data);
  t.is(put.status, 201, put.body.toString());
  const e = put.json<{ entry: EntryJson }>().entry;
  for (const [i, rg] of rgs.entries()) {
    const keys = await keysUnder(`rg${i}/${rg.volumeId}/${e.file_id}/`);
    t.is(keys.filter((k) => !k.includes('/manifest/')).length, 6, `rg${i} holds the 6 blocks as objects`);
    t.is(keys.filter((k) => k.includes('/manifest/')).length, 1, `rg${i} holds the manifest`);
    const block0 = keys.find((k) => /\/0\/-?\d+$/.test(k))!;
    t.deepEqual(await s3!.object(BUCKET, block0), data.subarray(0, BS), 'block 0 holds the first block\'s bytes exactly');
  }
  const got = await client.get('/s3/five.bin');
  t.is(got.status, 200, got.body.toString());
  t.true(got.body.equals(data), 'same bytes');
  const r = await client.get('/s3/five.bin', { Range: `bytes=${BS - 10}-${3 * BS + 9}` });
  t.is(r.status, 206);
  t.true(r.body.equals(data.subarray(BS - 10, 3 * BS + 10)), 'a range across block boundaries');
});

test.serial('overwriting a file deletes the old version\'s objects from S3', async (t) => {
  const { client, rgs } = vol.v;
  const first = (await client.put('/s3/over.bin', patternBytes(2 * BS, 3))).json<{ entry: EntryJson }>().entry;
  const second = await client.put('/s3/over.bin', patternBytes(BS + 5, 4));
  t.is(second.status, 201, second.body.toString());
  const rg = rgs[0]!;
  const blocks = async () => (await keysUnder(`rg0/${rg.volumeId}/${first.file_id}/`)).filter((k) => !k.includes('/manifest/'));
  t.is((await blocks()).length, 2, 'only the new version\'s blocks are left (one block and the last, partial one)');
  t.true((await client.get('/s3/over.bin')).body.equals(patternBytes(BS + 5, 4)));
});
