// Shared by the rg-rejections-*.test.ts files: the gateway they each start (three peers with
// different capabilities), and helpers to build signed requests, POST raw bodies, and check that
// nothing of a refused request reached the back-end.
import type { ExecutionContext } from 'ava';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join, sep } from 'node:path';
import { Caps, ChunkType, RequestCodec, type ManifestBlock, type Request } from '../../proto/messages.js';
import { signMessage } from '../../proto/signature.js';
import { formatBlockUrl, formatFileId, formatManifestUrl } from '../../http/data-url.js';
import { layOutChunks, randomNonce, type ChunkUpload, type FileRef, type RequestFields } from '../../http/rg-client.js';
import { fileRef, walk, type GatewayFolder } from './gateway.js';

export { walk };
import { gatewayPerFile, type PerFileGateway } from './gateway-per-file.js';
import type { MessageSpec } from './hand-protobuf.js';

export const MAX_UPLOAD = 8 << 20; // limits.max_upload_bytes of the test config
export const UG = 10n; // the test folder's writer peer: READ_DATA | WRITE_DATA | WRITE_METADATA, user 7
export const READ_ONLY = 11n; // a peer with READ_DATA only
export const WRITE_ONLY = 12n; // a peer with WRITE_DATA but not WRITE_METADATA

export interface RejectionGateway extends PerFileGateway {
  /** Private key of the READ_ONLY and WRITE_ONLY peers (not the UG's). */
  readonly otherKey: KeyObject;
}

let gateway: RejectionGateway | undefined;

/**
 * Starts the test file's gateway (one per file: call once, at the top level) with the UG and
 * the READ_ONLY and WRITE_ONLY peers in its volume; the helpers below talk to it.
 */
export function rejectionGateway(): RejectionGateway {
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const g = gatewayPerFile({
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
  }, undefined, (folder) => {
    writeFileSync(join(folder.dir, 'keys', 'other.pub.pem'), other.publicKey.export({ type: 'spki', format: 'pem' }) as string);
  });
  gateway = {
    get f() { return g.f; },
    get redis() { return g.redis; },
    get gw() { return g.gw; },
    otherKey: other.privateKey,
  };
  return gateway;
}

/** The folder of this file's gateway. */
function folder(): GatewayFolder {
  if (!gateway) throw new Error('call rejectionGateway() at the top of the test file first');
  return gateway.f;
}

/** A fresh file (random 64-bit id with the top bit set) for one test; fields as a UG sends them. */
export function newFile(fields: Partial<FileRef> = {}): FileRef {
  const file_id = randomBytes(8).readBigUInt64BE() | (1n << 63n);
  return fileRef(folder(), { file_id, fs_path: `/rej/${formatFileId(file_id)}.bin`, ...fields });
}

export function blockChunk(blockId: bigint, bytes: Buffer, version = 1n): ChunkUpload {
  return {
    block: { block_id: blockId, block_version: version, chunk_type: ChunkType.BLOCK, logical_offset: blockId * 4096n, logical_len: BigInt(bytes.length) },
    bytes,
  };
}

export function manifestChunk(mtimeSec: bigint, bytes: Buffer, nsec = 7n): ChunkUpload {
  return { block: { block_id: mtimeSec, block_version: nsec, chunk_type: ChunkType.MANIFEST }, bytes };
}

/** One 5000-byte block of random bytes laid out in a data plane. */
export function oneBlock(): { blocks: ManifestBlock[]; data: Buffer } {
  return layOutChunks([blockChunk(0n, randomBytes(5000))]);
}

/** The encoded Request signed with `key` (default: the UG's), with a fresh nonce unless given. */
export function signed(fields: RequestFields, key: KeyObject = folder().ugKey): Uint8Array {
  const request: Request = { ...fields, message_nonce: fields.message_nonce ?? randomNonce(), signature: '' };
  return signMessage(request, RequestCodec.encode, key).bytes;
}


/** Files the back-end holds for a file id (request_to_storage_path: "{volume}/{FILE_ID_HEX}/..."). */
export function storedFiles(fileId: bigint): string[] {
  const hex = formatFileId(fileId);
  return walk(folder().storageDir).filter((p) => p.split(sep).some((s) => s.toUpperCase() === hex));
}

export function chunkUrl(file: FileRef, b: ManifestBlock, fsPath = file.fs_path): string {
  const addr = { volume_id: 3n, fs_path: fsPath, file_id: file.file_id, file_version: file.file_version };
  return b.chunk_type === ChunkType.MANIFEST
    ? formatManifestUrl(folder().url, { ...addr, mtime_sec: b.block_id, mtime_nsec: Number(b.block_version) })
    : formatBlockUrl(folder().url, { ...addr, block_id: b.block_id, block_version: b.block_version });
}

/** Nothing of the file reached the back-end, and none of its chunks is served. */
export async function assertNothingStored(t: ExecutionContext, file: FileRef, blocks: ManifestBlock[]): Promise<void> {
  t.deepEqual(storedFiles(file.file_id), [], `the storage folder holds nothing for file ${formatFileId(file.file_id)}`);
  for (const b of blocks) {
    const res = await fetch(chunkUrl(file, b));
    await res.arrayBuffer();
    t.is(res.status, 404, `GET of chunk ${b.block_id}.${b.block_version} answers 404`);
  }
}

/** A failure message for an answer: the text of an error, not the binary Reply of a 200. */
export function why(res: { status: number; body: Buffer }): string {
  return res.status === 200 ? 'answered 200 with a Reply' : res.body.toString();
}

export interface RawAnswer {
  status: number;
  body: Buffer;
  text: string;
  headers: IncomingHttpHeaders;
}

/**
 * POSTs a body written piece by piece on a fresh connection: with Content-Length (declared, or
 * the real length), or without one (chunked transfer encoding). Stops writing once answered.
 */
export function post(pieces: Buffer[], headers: Record<string, string>, length: 'real' | 'chunked' | number = 'real'): Promise<RawAnswer> {
  const { hostname, port } = new URL(folder().url);
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
export function plainFieldsMultipart(parts: { name: string; data: Uint8Array }[]): { body: Buffer; contentType: string } {
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
export function withByte(bytes: Uint8Array, find: Buffer, at: number, value: number): Buffer {
  const out = Buffer.from(bytes);
  const pos = out.indexOf(find);
  if (pos < 0) throw new Error('marker not found in the encoding');
  out[pos + at] = value;
  return out;
}

/** A copy of a message spec without the named fields (a field that is left out is never written). */
export function specWithout(spec: MessageSpec, names: string[], blockSpec?: MessageSpec): MessageSpec {
  return {
    ...spec,
    fields: spec.fields.filter((x) => !names.includes(x.name)).map((x) => (blockSpec && x.name === 'blocks' ? { ...x, type: blockSpec } : x)),
  };
}
