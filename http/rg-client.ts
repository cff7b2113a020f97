// The client side of a replica gateway's data plane, as a user gateway speaks it: signed
// control-plane POSTs laid out like the original libcurl client (parts without a filename,
// application/octet-stream) and chunk GETs. Used by tests and benchmarks, and by the UG.
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import {
  ReplyCodec, RequestCodec, RequestType, SignatureField, type ManifestBlock, type Reply, type Request,
} from '../proto/messages.js';
import { signMessage, verifyRawMessage } from '../proto/signature.js';

export interface MultipartPart {
  name: string;
  data: Uint8Array;
}

/** multipart/form-data exactly as libcurl's form API sends it: no filename, octet-stream. */
export function encodeMultipart(parts: MultipartPart[], boundary = `------------------------${randomBytes(12).toString('hex')}`): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    chunks.push(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export function randomNonce(): bigint {
  return randomBytes(8).readBigUInt64BE();
}

/** A chunk to upload: where it belongs (block id/version, type, logical range) and its bytes. */
export interface ChunkUpload {
  block: Omit<ManifestBlock, 'offset' | 'size' | 'hash'>;
  bytes: Buffer;
}

/** Lays chunks out back to back in a data plane and fills in each block's offset, size and hash. */
export function layOutChunks(chunks: ChunkUpload[]): { blocks: ManifestBlock[]; data: Buffer } {
  let offset = 0n;
  const blocks = chunks.map((c) => {
    const b: ManifestBlock = {
      ...c.block, offset, size: BigInt(c.bytes.length), hash: createHash('sha256').update(c.bytes).digest(),
    };
    offset += BigInt(c.bytes.length);
    return b;
  });
  return { blocks, data: Buffer.concat(chunks.map((c) => c.bytes)) };
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

/** Signs the request with the sender's key and POSTs it with its data plane. */
export async function sendControlPlane(
  url: string, fields: RequestFields, senderKey: KeyObject, data: Buffer | null, gatewayKey?: KeyObject, timeoutMs?: number,
): Promise<ControlPlaneAnswer> {
  const request: Request = { ...fields, message_nonce: fields.message_nonce ?? randomNonce(), signature: '' };
  const { bytes } = signMessage(request, RequestCodec.encode, senderKey);
  return postRaw(url, bytes, data, gatewayKey, timeoutMs);
}

/** POSTs already-encoded control-plane bytes (tests use it to send tampered ones). */
export async function postRaw(url: string, control: Uint8Array, data: Buffer | null, gatewayKey?: KeyObject, timeoutMs?: number): Promise<ControlPlaneAnswer> {
  const parts: MultipartPart[] = [{ name: 'control-plane', data: control }];
  if (data) parts.push({ name: 'data-plane', data });
  const { body, contentType } = encodeMultipart(parts);
  const res = await fetch(url.endsWith('/') ? url : `${url}/`, { method: 'POST', body: new Uint8Array(body) as Uint8Array<ArrayBuffer>, headers: { 'Content-Type': contentType },
    ...(timeoutMs ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
  });
  const answer = Buffer.from(await res.arrayBuffer());
  let reply: Reply | null = null;
  let replyVerified: boolean | null = null;
  if (res.status === 200) {
    reply = ReplyCodec.decode(answer);
    if (gatewayKey) replyVerified = verifyRawMessage(answer, SignatureField.Reply, gatewayKey);
  }
  return { status: res.status, body: answer, reply, replyVerified, retryAfter: res.headers.get('retry-after') };
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
