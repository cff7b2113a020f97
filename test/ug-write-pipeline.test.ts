// A UG's writes keep several PUTCHUNKS POSTs on their way to each replica, and its reads fetch
// several blocks ahead: neither may publish, acknowledge or serve anything early. One replica runs
// the disk driver behind a wrapper that can hold or fail the write of one block on command.
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DISK_DRIVER_JS, waitFor } from './support/gateway.js';
import { patternBytes } from './support/ug.js';
import { ugVolumePerFile } from './support/ug-per-file.js';
import { parsePrometheusText, sampleValue } from './support/prom-text.js';

const BS = 65536;
const BLOCKS = 16;
const control = mkdtempSync(join(tmpdir(), 'sgw-test-write-control-'));
const storage = join(control, 'storage');
mkdirSync(storage);
test.after.always(() => rmSync(control, { recursive: true, force: true }));

// Holds the write of block HOLD_BLOCK of HOLD_PATH until CONTROL/release exists (saying so in
// CONTROL/held), and fails block FAIL_BLOCK of FAIL_PATH with EIO while CONTROL/fail exists.
const WRAPPER = `
import { existsSync, writeFileSync } from 'node:fs';
import { write_chunk as diskWrite } from ${JSON.stringify(DISK_DRIVER_JS)};
export { driver_init, read_chunk, delete_chunk, rename_file } from ${JSON.stringify(DISK_DRIVER_JS)};
export async function write_chunk(request, chunk, config, secrets) {
  const block = request.request_type === 1 ? Number(request.block_id) : -1;
  if (request.path === config.HOLD_PATH && block === config.HOLD_BLOCK) {
    writeFileSync(config.CONTROL + '/held', '');
    while (!existsSync(config.CONTROL + '/release')) await new Promise((r) => setTimeout(r, 20));
  }
  if (request.path === config.FAIL_PATH && block === config.FAIL_BLOCK && existsSync(config.CONTROL + '/fail')) return -5;
  return diskWrite(request, chunk, config, secrets);
}
`;

const vol = ugVolumePerFile({
  blockSize: BS,
  // One block per POST, four POSTs on their way: a 16-block file is many pipelined POSTs.
  ugConfig: { ug: { token: 'test-ug-token', batch_bytes: BS, posts_in_flight: 4, parallel_blocks: 8 } },
  rgFolder: (i) => (i === 1 ? {
    driverSource: WRAPPER,
    driverConfig: { STORAGE_DIR: storage, CONTROL: control, HOLD_PATH: '/held.bin', HOLD_BLOCK: 13, FAIL_PATH: '/fail.bin', FAIL_BLOCK: 9 },
  } : {}),
});

interface EntryJson { file_id: string; file_version: string; size: number }

/** Every file under a folder, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

const storageDirs = () => [vol.v.rgs[0]!.storageDir, storage];

test.serial('a pipelined write publishes only after every replica stored every chunk', async (t) => {
  const { client } = vol.v;
  const data = patternBytes(BLOCKS * BS - 7, 31);
  const put = client.put('/held.bin', data);
  await waitFor('the replica to hold block 13', async () => existsSync(join(control, 'held')));
  // The manifest went out with the last block, after 13: it may be stored, but nothing names it yet.
  t.is((await client.stat('/held.bin')).status, 404, 'nothing is published while a chunk is not stored');
  writeFileSync(join(control, 'release'), '');
  const res = await put;
  t.is(res.status, 201, res.body.toString());
  const got = await client.get('/held.bin');
  t.is(got.status, 200);
  t.true(got.body.equals(data), 'every byte reads back');
});

/** PUTCHUNKS POSTs a replica has answered 200. */
async function postsAnswered(url: string): Promise<number> {
  const m = parsePrometheusText(await (await fetch(`${url}/metrics`)).text());
  return sampleValue(m, 'sgw_http_requests_total', { route: '/', method: 'POST', status: '200' }) ?? 0;
}

test.serial('a write\'s last PUTCHUNKS carries the file\'s manifest: no POST of its own', async (t) => {
  const { client, rgs } = vol.v;
  const before = await Promise.all(rgs.map((rg) => postsAnswered(rg.url)));
  const data = patternBytes(BS + 5, 33); // two blocks, one per batch here: two POSTs, the second with the manifest
  const res = await client.put('/small.bin', data);
  t.is(res.status, 201, res.body.toString());
  const after = await Promise.all(rgs.map((rg) => postsAnswered(rg.url)));
  t.deepEqual(after.map((n, i) => n - before[i]!), rgs.map(() => 2), 'each replica got two POSTs, not a third for the manifest');
  const e = res.json<{ entry: EntryJson }>().entry;
  for (const root of storageDirs()) t.is(filesUnder(join(root, String(vol.v.ug.volumeId), e.file_id, 'manifest')).length, 1, `${root} stores the file's manifest`);
  const got = await client.get('/small.bin');
  t.true(got.status === 200 && got.body.equals(data), 'the file reads back');
});

test.serial('a replica failing in the middle of a pipelined write gets 502: nothing is published and the new chunks are removed again', async (t) => {
  const { client } = vol.v;
  const first = patternBytes(BLOCKS * BS, 41);
  t.is((await client.put('/fail.bin', first)).status, 201);
  const before = new Set(storageDirs().flatMap(filesUnder));
  writeFileSync(join(control, 'fail'), '');
  try {
    const res = await client.put('/fail.bin', patternBytes(BLOCKS * BS, 42));
    t.is(res.status, 502);
    t.regex(res.body.toString(), /PUTCHUNKS of \/fail\.bin failed: rg \d+: its driver answered -?EIO/);
  } finally {
    rmSync(join(control, 'fail'));
  }
  const got = await client.get('/fail.bin');
  t.true(got.body.equals(first), 'the version before the failed write is still the file');
  const left = storageDirs().flatMap(filesUnder).filter((f) => !before.has(f) && !f.endsWith('.tmp'));
  t.deepEqual(left, [], 'the chunks the failed write had stored are deleted again');
});

test.serial('blocks read ahead in parallel are each checked: a block bad on every replica cuts the body short, no bad byte is served', async (t) => {
  const { client, ug } = vol.v;
  const data = patternBytes(20 * BS, 51);
  const e = (await client.put('/verify.bin', data)).json<{ entry: EntryJson }>().entry;
  for (const root of storageDirs()) {
    const dir = join(root, String(ug.volumeId), e.file_id, '11');
    const path = join(dir, readdirSync(dir)[0]!);
    const bytes = readFileSync(path);
    bytes[5] ^= 0xff;
    writeFileSync(path, bytes);
  }
  const { status, length, body } = await new Promise<{ status: number; length: number; body: Buffer }>((resolve, reject) => {
    httpGet(`${client.url}/FILES/verify.bin`, { headers: { Authorization: `Bearer ${client.token}` } }, (res) => {
      const parts: Buffer[] = [];
      const done = () => resolve({ status: res.statusCode ?? 0, length: Number(res.headers['content-length']), body: Buffer.concat(parts) });
      res.on('data', (d: Buffer) => parts.push(d));
      res.once('end', done);
      res.once('error', done);
      res.once('aborted', done);
    }).once('error', reject);
  });
  t.is(status, 200, 'the first blocks were good: the answer had started');
  t.is(length, data.length);
  t.true(body.length <= 11 * BS, `the body stops at the bad block (got ${body.length} bytes)`);
  t.true(body.equals(data.subarray(0, body.length)), 'every byte served is the file\'s');
});
