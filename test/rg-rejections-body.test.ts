// What a replica gateway refuses, as a specification: every bad POST or GET gets its status from
// WIRE.md ("Status codes of the original" plus 413 and replay protection from issue 2) with a
// message saying what is wrong, and NOTHING of a refused POST reaches the back-end: afterwards the
// storage folder holds no file of that file id and a GET of each chunk answers 404.
// This file: what the POST body carries — the data plane and its hashes, the protobuf control
// plane and the multipart envelope (400), size limits (413), and the bodies that must be accepted.
// One real gateway (sgw start: supervisor, http actor, driver actors, disk driver) for the file;
// each test works on its own random file id, so the tests may run concurrently.
// Helpers and the gateway's volume configuration: support/rejections.ts.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkType, ReplyCodec, SignatureField, type ManifestBlock } from '../proto/messages.js';
import { verifyRawMessage } from '../proto/signature.js';
import { encodeMultipart, layOutChunks, postRaw, putChunksFields, randomNonce, type FileRef, type MultipartPart } from '../http/rg-client.js';
import { handSignMessage, ManifestBlockSpec, RequestSpec, type MessageSpec } from './support/hand-protobuf.js';
import {
  rejectionGateway, MAX_UPLOAD, UG, newFile, blockChunk, manifestChunk, oneBlock, signed, storedFiles, chunkUrl, assertNothingStored, why, post, plainFieldsMultipart, specWithout,
} from './support/rejections.js';

const gw = rejectionGateway();

// ---- the data plane: 400 ----

/** One block with byte `flip` altered is refused with 400 and stores nothing; then the same signed request with the right bytes is accepted (its nonce was not used up). */
async function refusedThenAccepted(t: ExecutionContext, { blocks, data }: { blocks: ManifestBlock[]; data: Buffer }, flip: number): Promise<void> {
  const file = newFile();
  const corrupt = Buffer.from(data);
  corrupt[flip]! ^= 0x01;
  const control = signed(putChunksFields(file, blocks));
  const res = await postRaw(gw.f.url, control, corrupt);
  t.is(res.status, 400, why(res));
  t.regex(res.body.toString(), /block 0 does not match its hash/);
  await assertNothingStored(t, file, blocks);
  const again = await postRaw(gw.f.url, control, data);
  t.is(again.status, 200, why(again));
  t.is(ReplyCodec.decode(again.body).error_code, 0);
}

test('a chunk whose bytes do not match blocks[i].hash is refused with 400 and stores nothing', async (t) => {
  await refusedThenAccepted(t, oneBlock(), 1234);
});

test('a chunk of 4 MiB or more (hashed in the thread pool, not inline) is checked the same way: a flipped byte gets 400 and stores nothing', async (t) => {
  await refusedThenAccepted(t, layOutChunks([blockChunk(0n, randomBytes(5 << 20))]), (5 << 20) - 1);
});

test('when only the second of two chunks does not match its hash, the POST is refused with 400 and the FIRST is not stored either', async (t) => {
  const file = newFile({ coordinator_id: UG });
  const { blocks, data } = layOutChunks([blockChunk(0n, randomBytes(4096)), manifestChunk(1_700_000_000n, randomBytes(300))]);
  const corrupt = Buffer.from(data);
  corrupt[corrupt.length - 1]! ^= 0x80;
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), corrupt);
  t.is(res.status, 400, why(res));
  t.regex(res.body.toString(), /block 1 does not match its hash/);
  await assertNothingStored(t, file, blocks);
});

test('a block whose offset or size points beyond the data plane, or a PUTCHUNKS without a data plane, is refused with 400 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  // Blocks must tile the data plane from its first byte (issue 15): an offset anywhere else is
  // refused as such, before the data plane is read.
  const cases: [string, ManifestBlock[], Buffer | null, RegExp][] = [
    ['size one byte too long', [{ ...blocks[0]!, size: blocks[0]!.size! + 1n }], data, /beyond the data plane/],
    ['offset past the end', [{ ...blocks[0]!, offset: BigInt(data.length) }], data, /must tile the data plane/],
    ['offset near 2^64', [{ ...blocks[0]!, offset: (1n << 64n) - 10n }], data, /must tile the data plane/],
    ['no offset/size', [{ block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK, hash: blocks[0]!.hash! }], data, /offset\/size/],
    ['no data-plane part', blocks, null, /missing data-plane/],
  ];
  for (const [what, bs, d, message] of cases) {
    const res = await postRaw(gw.f.url, signed(putChunksFields(file, bs)), d);
    t.is(res.status, 400, `${what}: ${why(res)}`);
    t.regex(res.body.toString(), message, what);
  }
  await assertNothingStored(t, file, blocks);
});

// ---- the control plane: 400 ----

test('a Request built by an independent encoder with every required field is accepted (the control for the next test)', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const { signed: bytes } = handSignMessage(RequestSpec, { ...putChunksFields(file, blocks), message_nonce: randomNonce() }, gw.f.ugKey);
  const res = await postRaw(gw.f.url, bytes, data, gw.f.rgKey);
  t.is(res.status, 200, why(res));
  t.is(res.reply!.error_code, 0);
  t.is(storedFiles(file.file_id).length, 1);
});

test('a Request missing a required field is refused with 400 and stores nothing, even when correctly signed', async (t) => {
  const blockWithoutVersion = specWithout(ManifestBlockSpec, ['block_version']);
  const cases: [string, MessageSpec][] = [
    ['src_gateway_id', specWithout(RequestSpec, ['src_gateway_id'])],
    ['message_nonce', specWithout(RequestSpec, ['message_nonce'])],
    ['fs_path', specWithout(RequestSpec, ['fs_path'])],
    ['request_type', specWithout(RequestSpec, ['request_type'])],
    ['user_id', specWithout(RequestSpec, ['user_id'])],
    ['blocks[0].block_version', specWithout(RequestSpec, [], blockWithoutVersion)],
  ];
  for (const [missing, spec] of cases) {
    const file = newFile();
    const { blocks, data } = oneBlock();
    const { signed: bytes } = handSignMessage(spec, { ...putChunksFields(file, blocks), message_nonce: randomNonce() }, gw.f.ugKey);
    const res = await postRaw(gw.f.url, bytes, data);
    t.is(res.status, 400, `without ${missing}: ${why(res)}`);
    t.regex(res.body.toString(), new RegExp(`missing required '${missing.replace(/^.*\./, '')}'`), `without ${missing}`);
    await assertNothingStored(t, file, blocks);
  }
});

test('a control plane that is not a protobuf Request (garbage bytes, text, a truncated Request) is refused with 400 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const good = signed(putChunksFields(file, blocks));
  const cases: [string, Uint8Array][] = [
    ['random bytes', Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(200)])],
    ['text', Buffer.from('this is not a protobuf message at all')],
    ['a truncated Request', good.subarray(0, good.length - 40)],
    ['a lone varint tag', Buffer.from([0x08])],
  ];
  for (const [what, bytes] of cases) {
    const res = await postRaw(gw.f.url, bytes, data);
    t.is(res.status, 400, `${what}: ${why(res)}`);
    t.regex(res.body.toString(), /malformed Request|missing required/, what);
  }
  await assertNothingStored(t, file, blocks);
});

test('an empty control-plane part is refused with 400', async (t) => {
  const { blocks, data } = oneBlock();
  const file = newFile();
  const res = await postRaw(gw.f.url, new Uint8Array(0), data);
  t.is(res.status, 400, why(res));
  t.regex(res.body.toString(), /control-plane/);
  await assertNothingStored(t, file, blocks);
});

test('a POST body that is not multipart/form-data is refused with 400 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const bytes = Buffer.from(signed(putChunksFields(file, blocks)));
  const cases: [string, Record<string, string>][] = [
    ['octet-stream', { 'Content-Type': 'application/octet-stream' }],
    ['urlencoded', { 'Content-Type': 'application/x-www-form-urlencoded' }],
    ['no Content-Type', {}],
  ];
  for (const [what, headers] of cases) {
    const res = await post([bytes, data], headers);
    t.is(res.status, 400, `${what}: ${res.text}`);
    t.regex(res.text, /multipart\/form-data/, what);
  }
  // multipart/form-data, but without a boundary, or with a body that does not follow it.
  const noBoundary = await post([encodeMultipart([{ name: 'control-plane', data: bytes }]).body], { 'Content-Type': 'multipart/form-data' });
  t.is(noBoundary.status, 400, noBoundary.text);
  t.regex(noBoundary.text, /multipart/);
  const wrongBoundary = await post([encodeMultipart([{ name: 'control-plane', data: bytes }, { name: 'data-plane', data }]).body], { 'Content-Type': 'multipart/form-data; boundary=not-the-one-used' });
  t.is(wrongBoundary.status, 400, wrongBoundary.text);
  await assertNothingStored(t, file, blocks);
});

test('a multipart POST without a control-plane part is refused with 400', async (t) => {
  const { blocks, data } = oneBlock();
  const file = newFile();
  const bytes = signed(putChunksFields(file, blocks));
  const onlyData = encodeMultipart([{ name: 'data-plane', data }]);
  const res = await post([onlyData.body], { 'Content-Type': onlyData.contentType });
  t.is(res.status, 400, res.text);
  t.regex(res.text, /missing control-plane part/);
  // The control plane under another name does not count.
  const misnamed = encodeMultipart([{ name: 'control_plane', data: bytes }, { name: 'data-plane', data }]);
  const res2 = await post([misnamed.body], { 'Content-Type': misnamed.contentType });
  t.is(res2.status, 400, res2.text);
  t.regex(res2.text, /missing control-plane part/);
  // Two control planes are ambiguous.
  const twice = encodeMultipart([{ name: 'control-plane', data: bytes }, { name: 'control-plane', data: bytes }, { name: 'data-plane', data }]);
  const res3 = await post([twice.body], { 'Content-Type': twice.contentType });
  t.is(res3.status, 400, res3.text);
  t.regex(res3.text, /duplicate control-plane/);
  await assertNothingStored(t, file, blocks);
});

// ---- size: 413 ----

/** A correctly signed PUTCHUNKS of one 9 MiB block: over the limit only by its size. */
function oversizePut(): { file: FileRef; blocks: ManifestBlock[]; control: Uint8Array; data: Buffer } {
  const file = newFile();
  const { blocks, data } = layOutChunks([blockChunk(0n, randomBytes(9 << 20))]);
  return { file, blocks, control: signed(putChunksFields(file, blocks)), data };
}

test('a POST whose Content-Length exceeds limits.max_upload_bytes is refused with 413, stores nothing, and the gateway keeps serving', async (t) => {
  const { file, blocks, control, data } = oversizePut();
  const { body, contentType } = encodeMultipart([{ name: 'control-plane', data: control }, { name: 'data-plane', data }]);
  t.true(body.length > MAX_UPLOAD);
  const res = await post([body], { 'Content-Type': contentType });
  t.is(res.status, 413, res.text);
  t.regex(res.text, /max_upload_bytes/);
  t.is((await fetch(`${gw.f.url}/PING`)).status, 200, 'the gateway still answers PING');
  // A Content-Length that announces too much is refused before any byte is read.
  const announced = await post([body.subarray(0, 1000)], { 'Content-Type': contentType }, 9 << 20);
  t.is(announced.status, 413, announced.text);
  await assertNothingStored(t, file, blocks);
});

test('a chunked upload (no Content-Length) over limits.max_upload_bytes is refused with 413, stores nothing, and the gateway keeps serving', async (t) => {
  const { file, blocks, control, data } = oversizePut();
  const { body, contentType } = encodeMultipart([{ name: 'control-plane', data: control }, { name: 'data-plane', data }]);
  const res = await post([body], { 'Content-Type': contentType }, 'chunked');
  t.is(res.status, 413, res.text);
  t.regex(res.text, /max_upload_bytes|size limit/);
  t.is((await fetch(`${gw.f.url}/PING`)).status, 200, 'the gateway still answers PING');
  await assertNothingStored(t, file, blocks);
});

test('a chunked upload of plain form fields that are each under limits.max_upload_bytes but together over it is refused with 413 and stores nothing', async (t) => {
  // 4 MiB of signed padding in the Request (an xattr_value) and a 5 MiB block: 9 MiB in all.
  const file = newFile();
  const { blocks, data } = layOutChunks([blockChunk(0n, randomBytes(5 << 20))]);
  const control = signed({ ...putChunksFields(file, blocks), xattr_value: 'x'.repeat(4 << 20) });
  const { body, contentType } = plainFieldsMultipart([{ name: 'control-plane', data: control }, { name: 'data-plane', data }]);
  t.true(body.length > MAX_UPLOAD);
  const res = await post([body], { 'Content-Type': contentType }, 'chunked');
  t.is(res.status, 413, res.text);
  t.regex(res.text, /max_upload_bytes|size limit/);
  t.is((await fetch(`${gw.f.url}/PING`)).status, 200);
  await assertNothingStored(t, file, blocks);
});

// ---- what must be accepted ----

/** A block holding every byte value, CRLFs and dashes included (what a multipart parser could trip on). */
function binaryBlock(): Buffer {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  return Buffer.concat([all, Buffer.from('\r\n--\r\n\r\n--'), Buffer.from(all).reverse(), all]);
}

async function assertStoredExactly(t: ExecutionContext, file: FileRef, blocks: ManifestBlock[], bytes: Buffer): Promise<void> {
  const stored = storedFiles(file.file_id);
  t.is(stored.length, 1);
  t.deepEqual(readFileSync(join(gw.f.storageDir, stored[0]!)), bytes, 'the back-end holds exactly the bytes sent');
  const got = await fetch(chunkUrl(file, blocks[0]!));
  t.is(got.status, 200);
  t.deepEqual(Buffer.from(await got.arrayBuffer()), bytes, 'GET serves exactly the bytes sent');
}

/**
 * POSTs a PUTCHUNKS of binaryBlock() whose multipart body `encode` writes, lets `checkBody` check
 * that body's shape (as latin1 text), and asserts the gateway accepts it with a signed Reply and
 * stores and serves exactly the bytes sent.
 */
async function assertAcceptedByteExact(
  t: ExecutionContext,
  encode: (parts: MultipartPart[]) => { body: Buffer; contentType: string },
  checkBody: (latin1: string) => void,
): Promise<void> {
  const file = newFile();
  const bytes = binaryBlock();
  const { blocks, data } = layOutChunks([blockChunk(0n, bytes)]);
  const control = signed(putChunksFields(file, blocks));
  t.true(Buffer.from(control).some((b) => b >= 0x80), 'the control plane carries bytes above 0x7f');
  const { body, contentType } = encode([{ name: 'control-plane', data: control }, { name: 'data-plane', data }]);
  checkBody(body.toString('latin1'));
  const res = await post([body], { 'Content-Type': contentType });
  t.is(res.status, 200, res.text);
  const reply = ReplyCodec.decode(res.body);
  t.is(reply.error_code, 0);
  t.true(verifyRawMessage(res.body, SignatureField.Reply, gw.f.rgKey), 'the reply is signed by the RG');
  await assertStoredExactly(t, file, blocks, bytes);
}

test('a POST shaped like the original client (parts without filename, Content-Type application/octet-stream) is accepted byte-exact', async (t) => {
  await assertAcceptedByteExact(t, (parts) => encodeMultipart(parts), (body) => {
    t.notRegex(body, /filename=/);
    t.regex(body, /Content-Type: application\/octet-stream/);
  });
});

test('the same POST with its parts sent as plain form fields (no filename, no Content-Type) is accepted byte-exact', async (t) => {
  await assertAcceptedByteExact(t, plainFieldsMultipart, (body) => {
    t.notRegex(body, /Content-Type|filename=/);
  });
});
