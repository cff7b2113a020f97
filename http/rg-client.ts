// The client side of a replica gateway's data plane, as a user gateway speaks it: signed
// control-plane POSTs laid out like the original libcurl client (parts without a filename,
// application/octet-stream), the data plane sent as its chunks without joining them. Used by
// tests and benchmarks, and by the UG.
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import {
  ReplyCodec, RequestCodec, RequestType, SignatureField, type ManifestBlock, type Reply, type Request,
} from '../proto/messages.js';
import { signMessage, verifyRawMessage } from '../proto/signature.js';
import { exchange } from './outgoing.js';

export interface MultipartPart {
  name: string;
  data: Uint8Array;
}

/** A part whose bytes may be the pieces they are made of (sent back to back, never joined). */
type PartOfPieces = { name: string; data: Uint8Array | readonly Uint8Array[] };

/** multipart/form-data exactly as libcurl's form API sends it (no filename, octet-stream), as the pieces to send. */
export function multipartPieces(parts: PartOfPieces[], boundary = `------------------------${randomBytes(12).toString('hex')}`): { pieces: Uint8Array[]; contentType: string } {
  const pieces: Uint8Array[] = [];
  for (const p of parts) {
    pieces.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    if (p.data instanceof Uint8Array) pieces.push(p.data);
    else pieces.push(...p.data);
    pieces.push(CRLF);
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return { pieces, contentType: `multipart/form-data; boundary=${boundary}` };
}

const CRLF = Buffer.from('\r\n');

/** The same body joined in one Buffer (tests and benchmarks that send it themselves). */
export function encodeMultipart(parts: MultipartPart[], boundary?: string): { body: Buffer; contentType: string } {
  const { pieces, contentType } = multipartPieces(parts, boundary);
  return { body: Buffer.concat(pieces), contentType };
}

export function randomNonce(): bigint {
  return randomBytes(8).readBigUInt64BE();
}

/** A chunk to upload: where it belongs (block id/version, type, logical range) and its bytes, whole or as pieces. */
export interface ChunkUpload {
  block: Omit<ManifestBlock, 'offset' | 'size' | 'hash'>;
  bytes: Buffer | readonly Buffer[];
}

/** Places chunks back to back in a data plane (from byte `from` of it): each block's offset, size and hash, and the pieces in order. */
export function layOut(chunks: ChunkUpload[], from = 0n): { blocks: ManifestBlock[]; pieces: Buffer[] } {
  let offset = from;
  const pieces: Buffer[] = [];
  const blocks = chunks.map((c) => {
    const parts = Buffer.isBuffer(c.bytes) ? [c.bytes] : c.bytes;
    const hash = createHash('sha256');
    let size = 0;
    for (const p of parts) {
      hash.update(p);
      size += p.length;
      pieces.push(p);
    }
    const b: ManifestBlock = { ...c.block, offset, size: BigInt(size), hash: hash.digest() };
    offset += BigInt(size);
    return b;
  });
  return { blocks, pieces };
}

/** Lays chunks out back to back in one data-plane Buffer and fills in each block's offset, size and hash. */
export function layOutChunks(chunks: ChunkUpload[]): { blocks: ManifestBlock[]; data: Buffer } {
  const { blocks, pieces } = layOut(chunks);
  return { blocks, data: Buffer.concat(pieces) };
}

export type RequestFields = Omit<Request, 'signature' | 'message_nonce'> & { message_nonce?: bigint };

export interface ControlPlaneAnswer {
  status: number;
  body: Buffer;
  /** The decoded Reply on 200. */
  reply: Reply | null;
  /** Whether the Reply's signature verified with the gateway key given (null: not checked). */
  replyVerified: boolean | null;
  retryAfter: string | null;
}

/** A data plane: one Buffer, or the chunks it is made of (sent back to back without joining them). */
export type DataPlane = Uint8Array | readonly Uint8Array[];

/** Signs the request with the sender's key and POSTs it with its data plane. */
export async function sendControlPlane(
  url: string, fields: RequestFields, senderKey: KeyObject, data: DataPlane | null, gatewayKey?: KeyObject, timeoutMs?: number,
): Promise<ControlPlaneAnswer> {
  const request: Request = { ...fields, message_nonce: fields.message_nonce ?? randomNonce(), signature: '' };
  const { bytes } = signMessage(request, RequestCodec.encode, senderKey);
  return postRaw(url, bytes, data, gatewayKey, timeoutMs);
}

/** POSTs already-encoded control-plane bytes (tests use it to send tampered ones). */
export async function postRaw(url: string, control: Uint8Array, data: DataPlane | null, gatewayKey?: KeyObject, timeoutMs?: number): Promise<ControlPlaneAnswer> {
  const parts: PartOfPieces[] = [{ name: 'control-plane', data: control }];
  if (data) parts.push({ name: 'data-plane', data });
  const { pieces, contentType } = multipartPieces(parts);
  const res = await exchange(url.endsWith('/') ? url : `${url}/`, {
    method: 'POST', headers: { 'Content-Type': contentType }, body: pieces, ...(timeoutMs ? { timeoutMs } : {}),
  });
  let reply: Reply | null = null;
  let replyVerified: boolean | null = null;
  if (res.status === 200) {
    reply = ReplyCodec.decode(res.body);
    if (gatewayKey) replyVerified = verifyRawMessage(res.body, SignatureField.Reply, gatewayKey);
  }
  const retryAfter = res.headers['retry-after'];
  return { status: res.status, body: res.body, reply, replyVerified, retryAfter: typeof retryAfter === 'string' ? retryAfter : null };
}

/** Fields shared by every request a sender makes for one file. */
export interface FileRef {
  volume_version: bigint;
  cert_version: bigint;
  volume_id: bigint;
  coordinator_id: bigint;
  file_id: bigint;
  file_version: bigint;
  fs_path: string;
  user_id: bigint;
  src_gateway_id: bigint;
}

export function putChunksFields(file: FileRef, blocks: ManifestBlock[]): RequestFields {
  return { ...file, request_type: RequestType.PUTCHUNKS, blocks };
}

export function deleteChunksFields(file: FileRef, blocks: ManifestBlock[]): RequestFields {
  return { ...file, request_type: RequestType.DELETECHUNKS, blocks };
}

export function renameHintFields(file: FileRef, newPath: string, manifest: ManifestBlock): RequestFields {
  return { ...file, request_type: RequestType.RENAME_HINT, new_fs_path: newPath, blocks: [manifest] };
}
