// What a replica gateway refuses, as a specification: every bad POST or GET gets its status from
// WIRE.md ("Status codes of the original" plus 413 and replay protection from issue 2) with a
// message saying what is wrong, and NOTHING of a refused POST reaches the back-end: afterwards the
// storage folder holds no file of that file id and a GET of each chunk answers 404.
// This file: who may ask — signatures, senders and replay (401), capabilities, volume, user and
// coordinator (403), newer versions (503) and unhandled request types (501).
// One real gateway (sgw start: supervisor, http actor, driver actors, disk driver) for the file;
// each test works on its own random file id, so the tests may run concurrently.
// Helpers and the gateway's volume configuration: support/rejections.ts.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { RequestCodec, RequestType, SignatureField } from '../proto/messages.js';
import { formatFileId } from '../http/data-url.js';
import { deleteChunksFields, layOutChunks, postRaw, putChunksFields, randomNonce, renameHintFields } from '../http/rg-client.js';
import { stringField } from './support/hand-protobuf.js';
import {
  rejectionGateway, READ_ONLY, WRITE_ONLY, newFile, blockChunk, manifestChunk, oneBlock, signed, walk, storedFiles, chunkUrl, assertNothingStored, why, withByte,
} from './support/rejections.js';

const gw = rejectionGateway();

// ---- signatures and senders: 401 ----

test('a PUTCHUNKS whose signature does not verify is refused with 401 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const bytes = signed(putChunksFields(file, blocks));
  const signature = stringField(bytes, SignatureField.Request);
  // Change one base64 character in the middle for another: still canonical base64, a wrong signature.
  const i = 100;
  const tampered = withByte(bytes, Buffer.from(signature, 'latin1'), i, signature[i] === 'A' ? 0x42 : 0x41);
  const res = await postRaw(gw.f.url, tampered, data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /signature/);
  await assertNothingStored(t, file, blocks);
});

test('a PUTCHUNKS whose signed bytes were changed after signing is refused with 401 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const bytes = signed(putChunksFields(file, blocks));
  // "/rej/..." -> "/rek/...": the body still decodes and passes every other check.
  const tampered = withByte(bytes, Buffer.from('/rej/'), 3, 'k'.charCodeAt(0));
  t.is(RequestCodec.decode(tampered).fs_path, file.fs_path.replace('/rej/', '/rek/'));
  const res = await postRaw(gw.f.url, tampered, data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /signature/);
  await assertNothingStored(t, file, blocks);
  t.deepEqual(await fetch(chunkUrl(file, blocks[0]!, file.fs_path.replace('/rej/', '/rek/'))).then((r) => r.status), 404);
});

test('a PUTCHUNKS from a gateway that is not in the volume configuration is refused with 401 and stores nothing', async (t) => {
  const file = newFile({ src_gateway_id: 999n, coordinator_id: 999n });
  const { blocks, data } = oneBlock();
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /unknown sender gateway 999/);
  await assertNothingStored(t, file, blocks);
});

test('a PUTCHUNKS that names the UG as sender but is signed with another known gateway\'s key is refused with 401 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks), gw.otherKey), data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /signature of gateway 10 does not verify/);
  // ... and the RG's own key is no better.
  const res2 = await postRaw(gw.f.url, signed(putChunksFields(file, blocks), gw.f.rgKey), data);
  t.is(res2.status, 401, why(res2));
  await assertNothingStored(t, file, blocks);
});

test('a DELETECHUNKS whose signature does not verify is refused with 401 and deletes nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const put = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
  t.is(put.status, 200, why(put));
  t.is(storedFiles(file.file_id).length, 1);
  const res = await postRaw(gw.f.url, signed(deleteChunksFields(file, blocks), gw.otherKey), null);
  t.is(res.status, 401, why(res));
  t.is(storedFiles(file.file_id).length, 1, 'the block is still stored');
  const got = await fetch(chunkUrl(file, blocks[0]!));
  t.is(got.status, 200);
  t.deepEqual(Buffer.from(await got.arrayBuffer()), data);
});

// ---- replay: 401 ----

test('a replayed PUTCHUNKS (the same signed bytes twice) is accepted once, then refused with 401 and changes nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const bytes = signed(putChunksFields(file, blocks));
  const first = await postRaw(gw.f.url, bytes, data, gw.f.rgKey);
  t.is(first.status, 200, why(first));
  t.is(first.reply!.error_code, 0);
  const stored = storedFiles(file.file_id);
  t.is(stored.length, 1, 'the first POST stored the block');
  // Remove it out of band: if the replay were carried out, the block would come back.
  rmSync(join(gw.f.storageDir, stored[0]!));
  const second = await postRaw(gw.f.url, bytes, data, gw.f.rgKey);
  t.is(second.status, 401, why(second));
  t.regex(second.body.toString(), /already used|replay/);
  await assertNothingStored(t, file, blocks);
});

test('a different request that reuses a (sender, nonce) pair is refused with 401 and stores nothing', async (t) => {
  const nonce = randomNonce();
  const a = newFile();
  const first = layOutChunks([blockChunk(0n, randomBytes(100))]);
  const ok = await postRaw(gw.f.url, signed({ ...putChunksFields(a, first.blocks), message_nonce: nonce }), first.data);
  t.is(ok.status, 200, why(ok));
  const b = newFile();
  const second = layOutChunks([blockChunk(0n, randomBytes(100))]);
  const res = await postRaw(gw.f.url, signed({ ...putChunksFields(b, second.blocks), message_nonce: nonce }), second.data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /already used|replay/);
  await assertNothingStored(t, b, second.blocks);
});
// ---- authorization: 403 ----

test('a PUTCHUNKS from a peer without the WRITE_DATA capability is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ src_gateway_id: READ_ONLY, coordinator_id: READ_ONLY });
  const { blocks, data } = oneBlock();
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks), gw.otherKey), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /gateway 11 lacks the capabilities/);
  await assertNothingStored(t, file, blocks);
});

test('a RENAME_HINT from a peer with WRITE_DATA but not WRITE_METADATA is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ src_gateway_id: WRITE_ONLY, coordinator_id: WRITE_ONLY });
  const { blocks, data } = layOutChunks([manifestChunk(1_700_000_100n, randomBytes(200))]);
  const res = await postRaw(gw.f.url, signed(renameHintFields(file, `/rej/renamed-${formatFileId(file.file_id)}`, blocks[0]!), gw.otherKey), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /gateway 12 lacks the capabilities/);
  await assertNothingStored(t, file, blocks);
  const renamed = await fetch(chunkUrl(file, blocks[0]!, `/rej/renamed-${formatFileId(file.file_id)}`));
  t.is(renamed.status, 404, 'the new manifest was not written');
});

test('a PUTCHUNKS for another volume is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ volume_id: 4n });
  const { blocks, data } = oneBlock();
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /volume 4 is not served here/);
  t.deepEqual(walk(join(gw.f.storageDir, '4')), [], 'nothing under volume 4');
  await assertNothingStored(t, file, blocks);
});

test('a PUTCHUNKS for a user the sending gateway does not act for is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ user_id: 8n });
  const { blocks, data } = oneBlock();
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /does not act for user 8/);
  await assertNothingStored(t, file, blocks);
});

test('a PUTCHUNKS carrying a manifest from a gateway that is not the file\'s coordinator is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ coordinator_id: WRITE_ONLY }); // sent by the UG, coordinated by another gateway
  const { blocks, data } = layOutChunks([blockChunk(0n, randomBytes(1000)), manifestChunk(1_700_000_000n, randomBytes(300))]);
  const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /coordinator/);
  await assertNothingStored(t, file, blocks);
});

// ---- versions: 503; request types: 501 ----

test('a PUTCHUNKS announcing a newer volume or certificate version than the gateway\'s is refused with 503 and Retry-After, storing nothing', async (t) => {
  for (const fields of [{ volume_version: 2n }, { cert_version: 2n }]) {
    const file = newFile(fields);
    const { blocks, data } = oneBlock();
    const res = await postRaw(gw.f.url, signed(putChunksFields(file, blocks)), data);
    t.is(res.status, 503, why(res));
    t.regex(res.body.toString(), /newer volume or certificate version/);
    t.truthy(res.retryAfter, 'Retry-After is set');
    t.regex(res.retryAfter ?? '', /^\d+$/);
    await assertNothingStored(t, file, blocks);
  }
});

test('a request type a replica gateway does not handle (WRITE, REFRESH, an unknown number) is refused with 501 and stores nothing', async (t) => {
  for (const type of [RequestType.WRITE, RequestType.REFRESH, 99]) {
    const file = newFile();
    const { blocks, data } = oneBlock();
    const res = await postRaw(gw.f.url, signed({ ...putChunksFields(file, blocks), request_type: type }), data);
    t.is(res.status, 501, `type ${type}: ${why(res)}`);
    t.regex(res.body.toString(), new RegExp(`request type ${type} is not handled`));
    await assertNothingStored(t, file, blocks);
  }
});
