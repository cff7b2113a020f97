// Issue 15, items 3, 4, 5, 8, 9 and the nonce rule: what one signed (or hand-made) POST can do
// with its blocks and paths. Many blocks cost work and Redis traffic linear in their number, and
// each DriverRequest still carries them all (block_vec); blocks beyond the limit, blocks that
// overlap or leave gaps, a chunk named twice, a part header that hides its name, and bad paths are
// refused before anything is read or written; a stored chunk is never replaced by other bytes; and
// a request that may have written something keeps its nonce.
import test from 'ava';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkType, ReplyCodec, RequestType, type ManifestBlock } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { Errno } from '../drivers/errno.js';
import {
  encodeMultipart, layOutChunks, postRaw, putChunksFields, renameHintFields, type ChunkUpload, type FileRef, type RequestFields,
} from '../http/rg-client.js';
import { DISK_DRIVER_JS, fileRef, waitForGateway } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import { postHead, restarts, signRequest, storedChunks, streamingPost, MiB } from './support/attack.js';
import { redisUsedMemory } from '../bench/support.js';

// The disk driver, which also records what each write of a /record/ file saw of block_vec, and
// whose write actor dies on block 1 of an /exit/ file (after block 0 was written).
const DRIVER = `
import * as disk from ${JSON.stringify(DISK_DRIVER_JS)};
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
export const { driver_init, read_chunk, delete_chunk, rename_file } = disk;
export async function write_chunk(request, chunk, config, secrets) {
  if (request.path.startsWith('/record/')) {
    const v = request.block_vec ?? [];
    const sum = v.reduce((a, b) => (a + b) % 18446744073709551616n, 0n);
    appendFileSync(join(config.STORAGE_DIR, 'vec-' + request.io_context + '.log'), request.block_id + ' ' + v.length + ' ' + sum + ' ' + Object.isFrozen(v) + '\\n');
  }
  if (request.path.startsWith('/exit/') && request.block_id === 1n) {
    await new Promise((r) => setTimeout(r, 300));
    process.exit(3);
  }
  return disk.write_chunk(request, chunk, config, secrets);
}
`;

const gw = gatewayPerFile({ driverSource: DRIVER, config: { limits: { call_timeout_ms: 5000 } } });
const signed = (fields: RequestFields, key = gw.f.ugKey) => signRequest(fields, key);
const stored = (file: FileRef) => storedChunks(gw.f.storageDir, file.file_id);

function newFile(dir: string): FileRef {
  const file_id = randomBytes(8).readBigUInt64BE() | (1n << 63n);
  return fileRef(gw.f, { file_id, fs_path: `/${dir}/${file_id.toString(16)}` });
}

function block(id: number, bytes: Buffer, version = 1n): ChunkUpload {
  return { block: { block_id: BigInt(id), block_version: version, chunk_type: ChunkType.BLOCK, logical_offset: BigInt(id) * 4096n, logical_len: BigInt(bytes.length) }, bytes };
}

async function redisTraffic(): Promise<number> {
  const info = await gw.redis.info('stats');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('total_net_input_bytes') + field('total_net_output_bytes');
}

function chunkUrl(file: FileRef, b: ManifestBlock): string {
  return formatBlockUrl(gw.f.url, { volume_id: file.volume_id, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: b.block_id, block_version: b.block_version });
}

/** POSTs a signed request whose data plane is withheld after `head`: the answer must come without it. */
async function refusedUnread(control: Uint8Array, dataBytes: number): Promise<{ status: number; text: string }> {
  const { head, contentType } = postHead(control);
  return streamingPost(gw.f.url, contentType, head, head.length + dataBytes, { holdAfter: head.length }).answer;
}

// ---- item 3: many blocks, linear cost ----

test.serial('a PUTCHUNKS of 2,000 one-byte blocks is stored whole; every DriverRequest carries all 2,000 block ids; Redis traffic grows linearly, not with the square', async (t) => {
  const n = 2000;
  const restartsBefore = await restarts(gw.redis, gw.f.gatewayKey);
  const file = newFile('record');
  const { blocks, data } = layOutChunks(Array.from({ length: n }, (_, i) => block(i, Buffer.from([i & 0xff]))));
  const before = await redisTraffic();
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data, gw.f.rgKey, 60_000);
  const traffic = (await redisTraffic()) - before;
  t.is(res.status, 200, res.body.toString());
  t.is(res.reply!.error_code, 0);
  t.is(stored(file).length, n, 'every block is stored');
  // Old way: every call carried the whole block_vec, ~10 KB of job data per call here (20 MB in all).
  t.log(`Redis traffic for ${n} blocks: ${(traffic / 1024).toFixed(0)} KiB (${(traffic / n).toFixed(0)} bytes per block)`);
  t.true(traffic / n < 4096, `${(traffic / n).toFixed(0)} bytes of Redis traffic per block`);
  // What each write_chunk saw: one io_context for the POST, all n ids, the same frozen array.
  const logs = readdirSync(gw.f.storageDir).filter((name) => name.startsWith('vec-'));
  const lines = logs.map((name) => readFileSync(join(gw.f.storageDir, name), 'utf8').trim().split('\n')).find((l) => l.length >= n);
  t.truthy(lines, 'one io_context for every call of the POST');
  const sum = BigInt(n * (n - 1) / 2);
  t.deepEqual(new Set(lines!.map((l) => l.split(' ').slice(1).join(' '))), new Set([`${n} ${sum} true`]));
  t.is(new Set(lines!.map((l) => l.split(' ')[0])).size, n);
  const got = await fetch(chunkUrl(file, blocks[1234]!));
  t.deepEqual(Buffer.from(await got.arrayBuffer()), Buffer.from([1234 & 0xff]));
  t.is(await restarts(gw.redis, gw.f.gatewayKey), restartsBefore, 'no actor was restarted');
});

// ---- the nonce: kept once something may have been written ----

test.serial('a POST answered 503 after some of its chunks were written keeps its nonce: the same signed bytes are refused as a replay', async (t) => {
  const file = newFile('exit');
  const { blocks, data } = layOutChunks([block(0, randomBytes(100)), block(1, randomBytes(100))]);
  const control = signed(putChunksFields(file, blocks));
  const res = await postRaw(gw.f.url, control, data);
  t.is(res.status, 503, res.body.toString());
  t.is(stored(file).length, 1, 'block 0 was written before the write actor died');
  const again = await postRaw(gw.f.url, control, data);
  t.is(again.status, 401, again.body.toString());
  t.regex(again.body.toString(), /replay/);
  await waitForGateway(gw.f, gw.redis); // the supervisor restarted the write actor
});

// ---- item 3: the limit on blocks; item 4: blocks must tile the data plane ----

test('a PUTCHUNKS naming more than limits.max_blocks_per_request (16,384) blocks gets 413 before its data plane is read, and stores nothing', async (t) => {
  const file = newFile('many');
  const blocks: ManifestBlock[] = Array.from({ length: 16_385 }, (_, i) => ({
    block_id: BigInt(i), block_version: 1n, chunk_type: ChunkType.BLOCK, offset: BigInt(i), size: 1n, hash: createHash('sha256').update(Buffer.from([i & 0xff])).digest(),
  }));
  const res = await refusedUnread(signed(putChunksFields(file, blocks)), blocks.length);
  t.is(res.status, 413, res.text);
  t.regex(res.text, /max_blocks_per_request/);
  t.deepEqual(stored(file), []);
});

test('blocks that overlap (2,000 over the same 90 KB), leave a gap or come out of order are refused with 400 before the data plane is read; nothing is stored and Redis does not grow', async (t) => {
  const file = newFile('overlap');
  const bytes = randomBytes(90_000);
  const hash = createHash('sha256').update(bytes).digest();
  const one = (i: number, offset: bigint, size = 90_000n): ManifestBlock => ({ block_id: BigInt(i), block_version: 1n, chunk_type: ChunkType.BLOCK, offset, size, hash });
  const memoryBefore = await redisUsedMemory(gw.redis);
  const cases: [string, ManifestBlock[]][] = [
    ['2,000 blocks over the same bytes', Array.from({ length: 2000 }, (_, i) => one(i, 0n))],
    ['a gap', [one(0, 0n, 100n), one(1, 200n, 100n)]],
    ['out of order', [one(0, 100n, 100n), one(1, 0n, 100n)]],
    ['the second block inside the first', [one(0, 0n, 1000n), one(1, 500n, 100n)]],
  ];
  for (const [what, blocks] of cases) {
    const res = await refusedUnread(signed(putChunksFields(file, blocks)), 90_000);
    t.is(res.status, 400, `${what}: ${res.text}`);
    t.regex(res.text, /tile the data plane/, what);
  }
  t.deepEqual(stored(file), []);
  t.true((await redisUsedMemory(gw.redis)) - memoryBefore < 4 * MiB, 'Redis did not grow');
});

// ---- item 5: immutable chunks ----

test('a PUTCHUNKS of a stored (file, block, version) with other bytes is refused (-EEXIST in the Reply); the stored bytes are served; the same bytes again succeed', async (t) => {
  const file = newFile('immutable');
  const first = layOutChunks([block(3, randomBytes(5000))]);
  const put1 = await postRaw(gw.f.url, signed(putChunksFields(file, first.blocks)), first.data);
  t.is(put1.reply?.error_code, 0);
  const read1 = await fetch(chunkUrl(file, first.blocks[0]!)); // now in the cache too
  t.deepEqual(Buffer.from(await read1.arrayBuffer()), first.data);
  const other = layOutChunks([block(3, randomBytes(5000))]);
  const put2 = await postRaw(gw.f.url, signed(putChunksFields(file, other.blocks)), other.data);
  t.is(put2.status, 200, put2.body.toString());
  t.is(put2.reply!.error_code, -Errno.EEXIST);
  t.deepEqual(readFileSync(join(gw.f.storageDir, stored(file)[0]!)), first.data, 'the back-end keeps the first bytes');
  const read2 = await fetch(chunkUrl(file, first.blocks[0]!));
  t.deepEqual(Buffer.from(await read2.arrayBuffer()), first.data, 'GET serves the first bytes');
  const retry = await postRaw(gw.f.url, signed(putChunksFields(file, first.blocks)), first.data);
  t.is(retry.reply?.error_code, 0, 'a retry of the same bytes succeeds');
});

test('a PUTCHUNKS naming one chunk twice is refused with 400 and stores nothing', async (t) => {
  const file = newFile('twice');
  const { blocks, data } = layOutChunks([block(0, randomBytes(100)), block(1, randomBytes(100)), block(0, randomBytes(100))]);
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 400, res.body.toString());
  t.regex(res.body.toString(), /same chunk as an earlier block/);
  t.deepEqual(stored(file), []);
});

// ---- item 8: a part header that hides its name ----

test('a first part whose header hides "name=control-plane" inside another parameter is not taken as the control plane: 400, nothing stored', async (t) => {
  const file = newFile('hidden');
  const { blocks, data } = layOutChunks([block(0, randomBytes(100))]);
  const control = signed(putChunksFields(file, blocks));
  const boundary = 'hidden-name-boundary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; x="; name=control-plane; "; name="ignored"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    control, Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="data-plane"\r\n\r\n`), data, Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const res = await fetch(`${gw.f.url}/`, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body: new Uint8Array(body) });
  t.is(res.status, 400);
  t.regex(await res.text(), /missing control-plane part: the first part is "ignored"/);
  t.deepEqual(stored(file), []);
  // The control for this test: the same parts under plain names are accepted.
  const plain = encodeMultipart([{ name: 'control-plane', data: control }, { name: 'data-plane', data }]);
  const ok = await fetch(`${gw.f.url}/`, { method: 'POST', headers: { 'Content-Type': plain.contentType }, body: new Uint8Array(plain.body) });
  t.is(ok.status, 200);
  t.is(ReplyCodec.decode(Buffer.from(await ok.arrayBuffer())).error_code, 0);
});

// ---- item 9: paths in signed requests ----

test('PUTCHUNKS and RENAME_HINT paths are checked like URL paths: "..", NUL, relative and over-long paths get 400 and nothing is stored', async (t) => {
  const bad = ['/a/../b', '/a/..', '/a\u0000b', 'relative/path', '', '/a//b', `/${'x'.repeat(4096)}`, `/${'y'.repeat(1 << 20)}`];
  for (const fs_path of bad) {
    const file = { ...newFile('paths'), fs_path };
    const { blocks, data } = layOutChunks([block(0, randomBytes(100))]);
    const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
    t.is(res.status, 400, `${JSON.stringify(fs_path.slice(0, 20))}: ${res.body.toString()}`);
    t.regex(res.body.toString(), /^fs_path /);
    t.deepEqual(stored(file), []);
  }
  const file = { ...newFile('paths'), coordinator_id: gw.f.ugId };
  for (const newPath of ['/x/../../etc', '/x\u0000', 'x']) {
    const m = layOutChunks([{ block: { block_id: 1_700_000_000n, block_version: 1n, chunk_type: ChunkType.MANIFEST }, bytes: randomBytes(50) }]);
    const res = await postRaw(gw.f.url, signed(renameHintFields(file, newPath, m.blocks[0]!)), m.data);
    t.is(res.status, 400, res.body.toString());
    t.regex(res.body.toString(), /^new_fs_path /);
  }
  t.deepEqual(stored(file), []);
  // A request type check stays first for what a replica does not handle at all.
  const refresh = await postRaw(gw.f.url, signed({ ...putChunksFields(newFile('paths'), []), request_type: RequestType.REFRESH, fs_path: '/../x' }), null);
  t.is(refresh.status, 501);
});

// ---- fuzzing the live POST path ----

test('property: 300 POSTs of signed requests whose multipart bodies were mutated get no 5xx, and no actor restarts', async (t) => {
  const restartsBefore = await restarts(gw.redis, gw.f.gatewayKey);
  const statuses = new Map<number, number>();
  const edit = fc.record({
    at: fc.nat(), drop: fc.nat({ max: 6 }),
    insert: fc.oneof(fc.uint8Array({ maxLength: 6 }), fc.constantFrom(...['\r\n', '--', '\r\n\r\n', '"', ';', 'name=', 'control-plane', '\u0000'].map((x) => new Uint8Array(Buffer.from(x))))),
  });
  await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), fc.nat(3), async (edits, blocks) => {
    const file = newFile('fuzz');
    const { blocks: bs, data } = layOutChunks(Array.from({ length: blocks + 1 }, (_, i) => block(i, randomBytes(200))));
    let { body, contentType } = encodeMultipart([{ name: 'control-plane', data: signed(putChunksFields(file, bs)) }, { name: 'data-plane', data }]);
    for (const e of edits) {
      const at = e.at % (body.length + 1);
      body = Buffer.concat([body.subarray(0, at), Buffer.from(e.insert), body.subarray(at + e.drop)]);
    }
    const res = await fetch(`${gw.f.url}/`, { method: 'POST', headers: { 'Content-Type': contentType }, body: new Uint8Array(body) });
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    return res.status < 500;
  }), { numRuns: 300 });
  t.log([...statuses].sort().map(([s, n]) => `${s}: ${n}`).join(', '));
  t.is(await restarts(gw.redis, gw.f.gatewayKey), restartsBefore, 'no actor was restarted');
});
