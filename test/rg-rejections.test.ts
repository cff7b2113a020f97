// What a replica gateway refuses, as a specification: every bad POST or GET gets its status from
// WIRE.md ("Status codes of the original" plus 413 and replay protection from issue 2) with a
// message saying what is wrong, and NOTHING of a refused POST reaches the back-end: afterwards the
// storage folder holds no file of that file id and a GET of each chunk answers 404.
// One real gateway (sgw start: supervisor, http actor, driver actors, disk driver) for the file;
// each test works on its own random file id, so the tests may run concurrently.
import test, { type ExecutionContext } from 'ava';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join, relative, sep } from 'node:path';
import { Redis } from 'ioredis';
import {
  Caps, ChunkType, ReplyCodec, RequestCodec, RequestType, SignatureField, type ManifestBlock, type Request,
} from '../proto/messages.js';
import { signMessage, verifyRawMessage } from '../proto/signature.js';
import { formatBlockUrl, formatFileId, formatManifestUrl } from '../http/data-url.js';
import {
  deleteChunksFields, encodeMultipart, layOutChunks, postRaw, putChunksFields, randomNonce, renameHintFields,
  type ChunkUpload, type FileRef, type RequestFields,
} from '../http/rg-client.js';
import { testRedis } from './support/redis.js';
import {
  cleanup, fileRef, makeGatewayFolder, rawGet, startGatewayProcess, waitForGateway, type GatewayFolder, type RunningGateway,
} from './support/gateway.js';
import {
  handSignMessage, ManifestBlockSpec, RequestSpec, stringField, type MessageSpec,
} from './support/hand-protobuf.js';

const MAX_UPLOAD = 8 << 20; // limits.max_upload_bytes of the test config
const UG = 10n; // the test folder's writer peer: READ_DATA | WRITE_DATA | WRITE_METADATA, user 7
const READ_ONLY = 11n; // a peer with READ_DATA only
const WRITE_ONLY = 12n; // a peer with WRITE_DATA but not WRITE_METADATA

let f: GatewayFolder;
let gw: RunningGateway;
let redis: Redis;
/** Private key of the READ_ONLY and WRITE_ONLY peers (not the UG's). */
let otherKey: KeyObject;

test.before(async () => {
  redis = new Redis((await testRedis()).url);
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  otherKey = other.privateKey;
  f = await makeGatewayFolder({
    config: {
      volume: {
        version: 1, cert_version: 1,
        gateways: [
          { id: String(UG), type: 'UG', user_id: '7', caps: Caps.READ_DATA | Caps.WRITE_DATA | Caps.WRITE_METADATA, public_key: 'keys/ug.pub.pem' },
          { id: String(READ_ONLY), type: 'UG', user_id: '7', caps: Caps.READ_DATA, public_key: 'keys/other.pub.pem' },
          { id: String(WRITE_ONLY), type: 'UG', user_id: '7', caps: Caps.WRITE_DATA, public_key: 'keys/other.pub.pem' },
        ],
      },
    },
  });
  writeFileSync(join(f.dir, 'keys', 'other.pub.pem'), other.publicKey.export({ type: 'spki', format: 'pem' }) as string);
  gw = startGatewayProcess(f.configFile);
  try {
    await waitForGateway(f, redis);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- gateway output ---\n${gw.output()}`);
  }
});

test.after.always(async () => {
  await gw?.stop();
  redis?.disconnect();
  if (f) cleanup([f.dir]);
});

// ---- helpers ----

/** A fresh file (random 64-bit id with the top bit set) for one test; fields as a UG sends them. */
function newFile(fields: Partial<FileRef> = {}): FileRef {
  const file_id = randomBytes(8).readBigUInt64BE() | (1n << 63n);
  return fileRef(f, { file_id, fs_path: `/rej/${formatFileId(file_id)}.bin`, ...fields });
}

function blockChunk(blockId: bigint, bytes: Buffer, version = 1n): ChunkUpload {
  return {
    block: { block_id: blockId, block_version: version, chunk_type: ChunkType.BLOCK, logical_offset: blockId * 4096n, logical_len: BigInt(bytes.length) },
    bytes,
  };
}

function manifestChunk(mtimeSec: bigint, bytes: Buffer, nsec = 7n): ChunkUpload {
  return { block: { block_id: mtimeSec, block_version: nsec, chunk_type: ChunkType.MANIFEST }, bytes };
}

/** One 5000-byte block of random bytes laid out in a data plane. */
function oneBlock(): { blocks: ManifestBlock[]; data: Buffer } {
  return layOutChunks([blockChunk(0n, randomBytes(5000))]);
}

/** The encoded Request signed with `key` (default: the UG's), with a fresh nonce unless given. */
function signed(fields: RequestFields, key: KeyObject = f.ugKey): Uint8Array {
  const request: Request = { ...fields, message_nonce: fields.message_nonce ?? randomNonce(), signature: '' };
  return signMessage(request, RequestCodec.encode, key).bytes;
}

/** Every file under a folder, as paths relative to it. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Files the back-end holds for a file id (request_to_storage_path: "{volume}/{FILE_ID_HEX}/..."). */
function storedFiles(fileId: bigint): string[] {
  const hex = formatFileId(fileId);
  return walk(f.storageDir).filter((p) => p.split(sep).some((s) => s.toUpperCase() === hex));
}

function chunkUrl(file: FileRef, b: ManifestBlock, fsPath = file.fs_path): string {
  const addr = { volume_id: 3n, fs_path: fsPath, file_id: file.file_id, file_version: file.file_version };
  return b.chunk_type === ChunkType.MANIFEST
    ? formatManifestUrl(f.url, { ...addr, mtime_sec: b.block_id, mtime_nsec: Number(b.block_version) })
    : formatBlockUrl(f.url, { ...addr, block_id: b.block_id, block_version: b.block_version });
}

/** Nothing of the file reached the back-end, and none of its chunks is served. */
async function assertNothingStored(t: ExecutionContext, file: FileRef, blocks: ManifestBlock[]): Promise<void> {
  t.deepEqual(storedFiles(file.file_id), [], `the storage folder holds nothing for file ${formatFileId(file.file_id)}`);
  for (const b of blocks) {
    const res = await fetch(chunkUrl(file, b));
    await res.arrayBuffer();
    t.is(res.status, 404, `GET of chunk ${b.block_id}.${b.block_version} answers 404`);
  }
}

/** A failure message for an answer: the text of an error, not the binary Reply of a 200. */
function why(res: { status: number; body: Buffer }): string {
  return res.status === 200 ? 'answered 200 with a Reply' : res.body.toString();
}

interface RawAnswer {
  status: number;
  body: Buffer;
  text: string;
  headers: IncomingHttpHeaders;
}

/**
 * POSTs a body written piece by piece on a fresh connection: with Content-Length (declared, or
 * the real length), or without one (chunked transfer encoding). Stops writing once answered.
 */
function post(pieces: Buffer[], headers: Record<string, string>, length: 'real' | 'chunked' | number = 'real'): Promise<RawAnswer> {
  const { hostname, port } = new URL(f.url);
  const total = pieces.reduce((n, p) => n + p.length, 0);
  const h: Record<string, string> = { Connection: 'close', ...headers };
  if (length === 'real') h['Content-Length'] = String(total);
  else if (typeof length === 'number') h['Content-Length'] = String(length);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest({ hostname, port, path: '/', method: 'POST', headers: h, agent: false }, (res) => {
      answered = true;
      const bufs: Buffer[] = [];
      res.on('data', (d: Buffer) => bufs.push(d));
      res.on('end', () => {
        const body = Buffer.concat(bufs);
        // On 200 the body is a binary Reply: no use in a failure message.
        const text = res.statusCode === 200 ? '(200: a Reply)' : body.toString('latin1');
        resolve({ status: res.statusCode ?? 0, body, text, headers: res.headers });
        req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', (err) => { if (!answered) reject(err); });
    void (async () => {
      for (const p of pieces) {
        if (answered || req.destroyed) return;
        for (let at = 0; at < p.length; at += 64 << 10) {
          if (answered || req.destroyed) return;
          if (!req.write(p.subarray(at, at + (64 << 10)))) {
            await new Promise<void>((r) => {
              const done = () => { req.off('drain', done); req.off('close', done); r(); };
              req.on('drain', done);
              req.on('close', done);
            });
          }
        }
      }
      if (!answered && !req.destroyed) req.end();
    })();
  });
}

/** multipart/form-data with the parts as plain form fields: no filename, no Content-Type. */
function plainFieldsMultipart(parts: { name: string; data: Uint8Array }[]): { body: Buffer; contentType: string } {
  const boundary = `----sgwtest${randomBytes(16).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n`));
    chunks.push(Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Replaces one byte of `bytes` at the first occurrence of `find` + `at`. */
function withByte(bytes: Uint8Array, find: Buffer, at: number, value: number): Buffer {
  const out = Buffer.from(bytes);
  const pos = out.indexOf(find);
  if (pos < 0) throw new Error('marker not found in the encoding');
  out[pos + at] = value;
  return out;
}

/** A copy of a message spec without the named fields (a field that is left out is never written). */
function specWithout(spec: MessageSpec, names: string[], blockSpec?: MessageSpec): MessageSpec {
  return {
    ...spec,
    fields: spec.fields.filter((x) => !names.includes(x.name)).map((x) => (blockSpec && x.name === 'blocks' ? { ...x, type: blockSpec } : x)),
  };
}

// ---- signatures and senders: 401 ----

test('a PUTCHUNKS whose signature does not verify is refused with 401 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const bytes = signed(putChunksFields(file, blocks));
  const signature = stringField(bytes, SignatureField.Request);
  // Change one base64 character in the middle for another: still canonical base64, a wrong signature.
  const i = 100;
  const tampered = withByte(bytes, Buffer.from(signature, 'latin1'), i, signature[i] === 'A' ? 0x42 : 0x41);
  const res = await postRaw(f.url, tampered, data);
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
  const res = await postRaw(f.url, tampered, data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /signature/);
  await assertNothingStored(t, file, blocks);
  t.deepEqual(await fetch(chunkUrl(file, blocks[0]!, file.fs_path.replace('/rej/', '/rek/'))).then((r) => r.status), 404);
});

test('a PUTCHUNKS from a gateway that is not in the volume configuration is refused with 401 and stores nothing', async (t) => {
  const file = newFile({ src_gateway_id: 999n, coordinator_id: 999n });
  const { blocks, data } = oneBlock();
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /unknown sender gateway 999/);
  await assertNothingStored(t, file, blocks);
});

test('a PUTCHUNKS that names the UG as sender but is signed with another known gateway\'s key is refused with 401 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks), otherKey), data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /signature of gateway 10 does not verify/);
  // ... and the RG's own key is no better.
  const res2 = await postRaw(f.url, signed(putChunksFields(file, blocks), f.rgKey), data);
  t.is(res2.status, 401, why(res2));
  await assertNothingStored(t, file, blocks);
});

test('a DELETECHUNKS whose signature does not verify is refused with 401 and deletes nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const put = await postRaw(f.url, signed(putChunksFields(file, blocks)), data);
  t.is(put.status, 200, why(put));
  t.is(storedFiles(file.file_id).length, 1);
  const res = await postRaw(f.url, signed(deleteChunksFields(file, blocks), otherKey), null);
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
  const first = await postRaw(f.url, bytes, data, f.rgKey);
  t.is(first.status, 200, why(first));
  t.is(first.reply!.error_code, 0);
  const stored = storedFiles(file.file_id);
  t.is(stored.length, 1, 'the first POST stored the block');
  // Remove it out of band: if the replay were carried out, the block would come back.
  rmSync(join(f.storageDir, stored[0]!));
  const second = await postRaw(f.url, bytes, data, f.rgKey);
  t.is(second.status, 401, why(second));
  t.regex(second.body.toString(), /already used|replay/);
  await assertNothingStored(t, file, blocks);
});

test('a different request that reuses a (sender, nonce) pair is refused with 401 and stores nothing', async (t) => {
  const nonce = randomNonce();
  const a = newFile();
  const first = layOutChunks([blockChunk(0n, randomBytes(100))]);
  const ok = await postRaw(f.url, signed({ ...putChunksFields(a, first.blocks), message_nonce: nonce }), first.data);
  t.is(ok.status, 200, why(ok));
  const b = newFile();
  const second = layOutChunks([blockChunk(0n, randomBytes(100))]);
  const res = await postRaw(f.url, signed({ ...putChunksFields(b, second.blocks), message_nonce: nonce }), second.data);
  t.is(res.status, 401, why(res));
  t.regex(res.body.toString(), /already used|replay/);
  await assertNothingStored(t, b, second.blocks);
});

// ---- the data plane: 400 ----

test('a chunk whose bytes do not match blocks[i].hash is refused with 400 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const corrupt = Buffer.from(data);
  corrupt[1234]! ^= 0x01;
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks)), corrupt);
  t.is(res.status, 400, why(res));
  t.regex(res.body.toString(), /block 0 does not match its hash/);
  await assertNothingStored(t, file, blocks);
});

test('when only the second of two chunks does not match its hash, the POST is refused with 400 and the FIRST is not stored either', async (t) => {
  const file = newFile({ coordinator_id: UG });
  const { blocks, data } = layOutChunks([blockChunk(0n, randomBytes(4096)), manifestChunk(1_700_000_000n, randomBytes(300))]);
  const corrupt = Buffer.from(data);
  corrupt[corrupt.length - 1]! ^= 0x80;
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks)), corrupt);
  t.is(res.status, 400, why(res));
  t.regex(res.body.toString(), /block 1 does not match its hash/);
  await assertNothingStored(t, file, blocks);
});

test('a block whose offset or size points beyond the data plane, or a PUTCHUNKS without a data plane, is refused with 400 and stores nothing', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const cases: [string, ManifestBlock[], Buffer | null, RegExp][] = [
    ['size one byte too long', [{ ...blocks[0]!, size: blocks[0]!.size! + 1n }], data, /beyond the data plane/],
    ['offset past the end', [{ ...blocks[0]!, offset: BigInt(data.length) }], data, /beyond the data plane/],
    ['offset near 2^64', [{ ...blocks[0]!, offset: (1n << 64n) - 10n }], data, /beyond the data plane/],
    ['no offset/size', [{ block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK, hash: blocks[0]!.hash! }], data, /offset\/size/],
    ['no data-plane part', blocks, null, /missing data-plane/],
  ];
  for (const [what, bs, d, message] of cases) {
    const res = await postRaw(f.url, signed(putChunksFields(file, bs)), d);
    t.is(res.status, 400, `${what}: ${why(res)}`);
    t.regex(res.body.toString(), message, what);
  }
  await assertNothingStored(t, file, blocks);
});

// ---- the control plane: 400 ----

test('a Request built by an independent encoder with every required field is accepted (the control for the next test)', async (t) => {
  const file = newFile();
  const { blocks, data } = oneBlock();
  const { signed: bytes } = handSignMessage(RequestSpec, { ...putChunksFields(file, blocks), message_nonce: randomNonce() }, f.ugKey);
  const res = await postRaw(f.url, bytes, data, f.rgKey);
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
    const { signed: bytes } = handSignMessage(spec, { ...putChunksFields(file, blocks), message_nonce: randomNonce() }, f.ugKey);
    const res = await postRaw(f.url, bytes, data);
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
    const res = await postRaw(f.url, bytes, data);
    t.is(res.status, 400, `${what}: ${why(res)}`);
    t.regex(res.body.toString(), /malformed Request|missing required/, what);
  }
  await assertNothingStored(t, file, blocks);
});

test('an empty control-plane part is refused with 400', async (t) => {
  const { blocks, data } = oneBlock();
  const file = newFile();
  const res = await postRaw(f.url, new Uint8Array(0), data);
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
  t.is((await fetch(`${f.url}/PING`)).status, 200, 'the gateway still answers PING');
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
  t.is((await fetch(`${f.url}/PING`)).status, 200, 'the gateway still answers PING');
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
  t.is((await fetch(`${f.url}/PING`)).status, 200);
  await assertNothingStored(t, file, blocks);
});

// ---- authorization: 403 ----

test('a PUTCHUNKS from a peer without the WRITE_DATA capability is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ src_gateway_id: READ_ONLY, coordinator_id: READ_ONLY });
  const { blocks, data } = oneBlock();
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks), otherKey), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /gateway 11 lacks the capabilities/);
  await assertNothingStored(t, file, blocks);
});

test('a RENAME_HINT from a peer with WRITE_DATA but not WRITE_METADATA is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ src_gateway_id: WRITE_ONLY, coordinator_id: WRITE_ONLY });
  const { blocks, data } = layOutChunks([manifestChunk(1_700_000_100n, randomBytes(200))]);
  const res = await postRaw(f.url, signed(renameHintFields(file, `/rej/renamed-${formatFileId(file.file_id)}`, blocks[0]!), otherKey), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /gateway 12 lacks the capabilities/);
  await assertNothingStored(t, file, blocks);
  const renamed = await fetch(chunkUrl(file, blocks[0]!, `/rej/renamed-${formatFileId(file.file_id)}`));
  t.is(renamed.status, 404, 'the new manifest was not written');
});

test('a PUTCHUNKS for another volume is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ volume_id: 4n });
  const { blocks, data } = oneBlock();
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /volume 4 is not served here/);
  t.deepEqual(walk(join(f.storageDir, '4')), [], 'nothing under volume 4');
  await assertNothingStored(t, file, blocks);
});

test('a PUTCHUNKS for a user the sending gateway does not act for is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ user_id: 8n });
  const { blocks, data } = oneBlock();
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /does not act for user 8/);
  await assertNothingStored(t, file, blocks);
});

test('a PUTCHUNKS carrying a manifest from a gateway that is not the file\'s coordinator is refused with 403 and stores nothing', async (t) => {
  const file = newFile({ coordinator_id: WRITE_ONLY }); // sent by the UG, coordinated by another gateway
  const { blocks, data } = layOutChunks([blockChunk(0n, randomBytes(1000)), manifestChunk(1_700_000_000n, randomBytes(300))]);
  const res = await postRaw(f.url, signed(putChunksFields(file, blocks)), data);
  t.is(res.status, 403, why(res));
  t.regex(res.body.toString(), /coordinator/);
  await assertNothingStored(t, file, blocks);
});

// ---- versions: 503; request types: 501 ----

test('a PUTCHUNKS announcing a newer volume or certificate version than the gateway\'s is refused with 503 and Retry-After, storing nothing', async (t) => {
  for (const fields of [{ volume_version: 2n }, { cert_version: 2n }]) {
    const file = newFile(fields);
    const { blocks, data } = oneBlock();
    const res = await postRaw(f.url, signed(putChunksFields(file, blocks)), data);
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
    const res = await postRaw(f.url, signed({ ...putChunksFields(file, blocks), request_type: type }), data);
    t.is(res.status, 501, `type ${type}: ${why(res)}`);
    t.regex(res.body.toString(), new RegExp(`request type ${type} is not handled`));
    await assertNothingStored(t, file, blocks);
  }
});

// ---- data-plane URLs: 400 ----

test('a GET whose URL climbs out with "..", raw or percent-encoded, is refused with 400', async (t) => {
  for (const path of [
    '/DATA/3/a/../b.1F.1/0.0',
    '/DATA/3/../../../etc/passwd.1F.1/0.0',
    '/DATA/3/a/..',
    '/DATA/3/a/%2e%2e/b.1F.1/0.0',
    '/DATA/3/a/%2E%2E/b.1F.1/0.0',
    '/DATA/3/a/.%2e/b.1F.1/0.0',
    '/DATA/3/a/b.1F.1/%2e%2e',
    '/DATA/3/a/..%2Fb.1F.1/0.0',
  ]) {
    const res = await rawGet(f.url, path);
    t.is(res.status, 400, `${path}: ${why(res)}`);
    t.regex(res.body.toString(), /bad data URL/, path);
  }
});

test('a GET with a non-hex file id or an out-of-range number is refused with 400 naming the bad part', async (t) => {
  const cases: [string, RegExp][] = [
    ['/DATA/3/x.ZZ.1/0.0', /file id "ZZ" is not hexadecimal/],
    ['/DATA/3/x.0x1F.1/0.0', /not hexadecimal/],
    ['/DATA/3/x.1FFFFFFFFFFFFFFFF.1/0.0', /longer than 16 hex digits/],
    ['/DATA/3/x.1F.1/18446744073709551616.0', /block id .* out of range/],
    ['/DATA/3/x.1F.1/0.9223372036854775808', /block version .* out of range/],
    ['/DATA/3/x.1F.9223372036854775808/0.0', /file version .* out of range/],
    ['/DATA/18446744073709551616/x.1F.1/0.0', /volume id .* out of range/],
    ['/DATA/3/x.1F.1/manifest.1.1000000000', /mtime_nsec/],
    ['/DATA/3/x.1F.1/-1.0', /block id/],
  ];
  for (const [path, message] of cases) {
    const res = await rawGet(f.url, path);
    t.is(res.status, 400, `${path}: ${why(res)}`);
    t.regex(res.body.toString(), message, path);
  }
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
  t.deepEqual(readFileSync(join(f.storageDir, stored[0]!)), bytes, 'the back-end holds exactly the bytes sent');
  const got = await fetch(chunkUrl(file, blocks[0]!));
  t.is(got.status, 200);
  t.deepEqual(Buffer.from(await got.arrayBuffer()), bytes, 'GET serves exactly the bytes sent');
}

test('a POST shaped like the original client (parts without filename, Content-Type application/octet-stream) is accepted byte-exact', async (t) => {
  const file = newFile();
  const bytes = binaryBlock();
  const { blocks, data } = layOutChunks([blockChunk(0n, bytes)]);
  const control = signed(putChunksFields(file, blocks));
  t.true(Buffer.from(control).some((b) => b >= 0x80), 'the control plane carries bytes above 0x7f');
  const { body, contentType } = encodeMultipart([{ name: 'control-plane', data: control }, { name: 'data-plane', data }]);
  t.notRegex(body.toString('latin1'), /filename=/);
  t.regex(body.toString('latin1'), /Content-Type: application\/octet-stream/);
  const res = await post([body], { 'Content-Type': contentType });
  t.is(res.status, 200, res.text);
  const reply = ReplyCodec.decode(res.body);
  t.is(reply.error_code, 0);
  t.true(verifyRawMessage(res.body, SignatureField.Reply, f.rgKey), 'the reply is signed by the RG');
  await assertStoredExactly(t, file, blocks, bytes);
});

test('the same POST with its parts sent as plain form fields (no filename, no Content-Type) is accepted byte-exact', async (t) => {
  const file = newFile();
  const bytes = binaryBlock();
  const { blocks, data } = layOutChunks([blockChunk(0n, bytes)]);
  const control = signed(putChunksFields(file, blocks));
  t.true(Buffer.from(control).some((b) => b >= 0x80), 'the control plane carries bytes above 0x7f');
  const { body, contentType } = plainFieldsMultipart([{ name: 'control-plane', data: control }, { name: 'data-plane', data }]);
  t.notRegex(body.toString('latin1'), /Content-Type|filename=/);
  const res = await post([body], { 'Content-Type': contentType });
  t.is(res.status, 200, res.text);
  const reply = ReplyCodec.decode(res.body);
  t.is(reply.error_code, 0);
  t.true(verifyRawMessage(res.body, SignatureField.Reply, f.rgKey), 'the reply is signed by the RG');
  await assertStoredExactly(t, file, blocks, bytes);
});
