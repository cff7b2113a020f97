// The Syndicate messages as plain objects with bigint for every 64-bit field (ids, versions and
// nonces are random over 64 bits; a JS number would lose them). Static protobufjs code does the
// byte work; this module converts Long <-> bigint and checks required fields before encoding,
// because protobufjs's encode() silently writes defaults for missing required fields.
import protobuf from 'protobufjs';
import Long from 'long';
import { SG_messages } from './generated/sg.js';
import { SG_PROTO } from './generated/sg-schema.js';

export interface ManifestBlock {
  block_id: bigint;
  block_version: bigint;
  hash?: Uint8Array;
  owner_id?: bigint;
  caps?: number;
  chunk_type?: number;
  offset?: bigint;
  size?: bigint;
  logical_offset?: bigint;
  logical_len?: bigint;
}

export interface Manifest {
  volume_id: bigint;
  coordinator_id: bigint;
  owner_id: bigint;
  file_id: bigint;
  file_version: bigint;
  mtime_sec: bigint;
  mtime_nsec: number;
  size: bigint;
  blocks?: ManifestBlock[];
  signature: string;
}

export interface SignedBlockHeader {
  volume_id: bigint;
  file_id: bigint;
  file_version: bigint;
  block_id: bigint;
  block_version: bigint;
  block_hash: Uint8Array;
  gateway_id: bigint;
  signature: string;
}

export interface Request {
  volume_version: bigint;
  cert_version: bigint;
  request_type: number;
  volume_id: bigint;
  coordinator_id: bigint;
  file_id: bigint;
  file_version: bigint;
  fs_path: string;
  blocks?: ManifestBlock[];
  new_fs_path?: string;
  new_size?: bigint;
  new_manifest_mtime_sec?: bigint;
  new_manifest_mtime_nsec?: number;
  user_id: bigint;
  src_gateway_id: bigint;
  signature: string;
  message_nonce: bigint;
  new_owner_id?: bigint;
  new_mode?: number;
  new_mtime_sec?: bigint;
  new_mtime_nsec?: number;
  write_off?: bigint;
  write_len?: bigint;
  xattr_name?: string;
  xattr_value?: string;
  xattr_flags?: number;
  gateway_cert_version?: bigint;
}

export interface Reply {
  volume_version: bigint;
  cert_version: bigint;
  message_nonce: bigint;
  error_code: number;
  user_id: bigint;
  gateway_id: bigint;
  gateway_type: bigint;
  signature: string;
  xattr_names?: string[];
  xattr_value?: string;
}

export interface DriverRequest {
  volume_id: bigint;
  user_id: bigint;
  coordinator_id: bigint;
  file_id: bigint;
  file_version: bigint;
  request_type: number;
  path: string;
  block_id?: bigint;
  block_version?: bigint;
  manifest_mtime_sec?: bigint;
  manifest_mtime_nsec?: number;
  offset?: bigint;
  len?: bigint;
  io_context?: bigint;
  io_type?: number;
  cached_blocks?: boolean[];
  manifest?: Manifest;
  block_size?: bigint;
  block_vec?: bigint[];
  new_path?: string;
}

/** Request.request_type values. */
export const RequestType = {
  WRITE: 1, TRUNCATE: 2, DETACH: 3, RENAME: 4, PUTCHUNKS: 5, DELETECHUNKS: 6, SETXATTR: 7,
  REMOVEXATTR: 8, RELOAD: 9, REFRESH: 10, RENAME_HINT: 11,
} as const;
/** DriverRequest.request_type values. */
export const DriverRequestType = { BLOCK: 1, MANIFEST: 2, RENAME_HINT: 3 } as const;
/** DriverRequest.io_type values. */
export const IoType = { NONE: 0, READ: 1, WRITE: 2, SYNC: 3, DELETE: 4 } as const;
/** ManifestBlock.chunk_type values. */
export const ChunkType = { BLOCK: 1, MANIFEST: 2 } as const;
/** Capability bits of a gateway. */
export const Caps = { READ_DATA: 1, WRITE_DATA: 2, READ_METADATA: 4, WRITE_METADATA: 8, COORDINATE: 16 } as const;
/** Gateway type numbers as Syndicate puts them in Reply.gateway_type. */
export const GatewayTypeNumber = { UG: 1, RG: 2, AG: 3 } as const;

/** Thrown when bytes do not decode or a message lacks a required field. */
export class MessageError extends Error {
  override name = 'MessageError';
}

type MessageName = 'ManifestBlock' | 'Manifest' | 'SignedBlockHeader' | 'Request' | 'Reply' | 'DriverRequest';
interface WireField { name: string; id: number; long: 'u' | 's' | null; message: MessageName | null; repeated: boolean; required: boolean }
interface StaticType {
  encode(message: object): { finish(): Uint8Array };
  decode(bytes: Uint8Array): object;
}

// Field metadata comes from the .proto itself so that the schema is written down only once.
const schema = protobuf.parse(SG_PROTO, { keepCase: true }).root.resolveAll();
const fieldsOf = new Map<MessageName, WireField[]>();
for (const name of ['ManifestBlock', 'Manifest', 'SignedBlockHeader', 'Request', 'Reply', 'DriverRequest'] as MessageName[]) {
  const type = schema.lookupType(`SG_messages.${name}`);
  fieldsOf.set(name, type.fieldsArray.map((f): WireField => ({
    name: f.name,
    id: f.id,
    long: f.type === 'uint64' || f.type === 'fixed64' ? 'u' : f.type === 'int64' || f.type === 'sint64' || f.type === 'sfixed64' ? 's' : null,
    message: f.resolvedType ? (f.resolvedType.name as MessageName) : null,
    repeated: f.repeated,
    required: f.required,
  })).sort((a, b) => a.id - b.id));
}
const staticTypes = SG_messages as unknown as Record<MessageName, StaticType>;

const U64_MAX = 2n ** 64n - 1n;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function fromWireValue(f: WireField, v: unknown): unknown {
  if (f.long) return (v as Long).toBigInt();
  if (f.message) return fromWire(f.message, v as Record<string, unknown>);
  return v;
}

function fromWire(type: MessageName, raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fieldsOf.get(type)!) {
    if (!Object.prototype.hasOwnProperty.call(raw, f.name)) continue;
    const v = raw[f.name];
    if (v == null) continue;
    if (f.repeated) {
      const arr = v as unknown[];
      if (arr.length > 0) out[f.name] = arr.map((x) => fromWireValue(f, x));
    } else out[f.name] = fromWireValue(f, v);
  }
  return out;
}

function toWireValue(type: MessageName, f: WireField, v: unknown): unknown {
  if (f.long) {
    const n = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : null;
    if (n === null) throw new MessageError(`${type}.${f.name} must be a bigint`);
    // Long.fromBigInt keeps only the low 64 bits: an out-of-range value would be signed silently wrong.
    const fits = f.long === 'u' ? n >= 0n && n <= U64_MAX : n >= I64_MIN && n <= I64_MAX;
    if (!fits) throw new MessageError(`${type}.${f.name} = ${n} is out of range for ${f.long === 'u' ? 'uint64' : 'int64'}`);
    return Long.fromBigInt(n, f.long === 'u');
  }
  if (f.message) return toWire(f.message, v as Record<string, unknown>);
  return v;
}

function toWire(type: MessageName, msg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fieldsOf.get(type)!) {
    const v = msg[f.name];
    if (v == null) {
      if (f.required) throw new MessageError(`${type}.${f.name} is required`);
      continue;
    }
    out[f.name] = f.repeated ? (v as unknown[]).map((x) => toWireValue(type, f, x)) : toWireValue(type, f, v);
  }
  return out;
}

function codec<T extends object>(type: MessageName) {
  const st = staticTypes[type];
  return {
    encode(msg: T): Uint8Array {
      return st.encode(toWire(type, msg as Record<string, unknown>)).finish();
    },
    decode(bytes: Uint8Array): T {
      let raw: object;
      try {
        raw = st.decode(bytes);
      } catch (err) {
        throw new MessageError(`malformed ${type}: ${(err as Error).message}`);
      }
      return fromWire(type, raw as Record<string, unknown>) as T;
    },
  };
}

export const ManifestBlockCodec = codec<ManifestBlock>('ManifestBlock');
export const ManifestCodec = codec<Manifest>('Manifest');
export const SignedBlockHeaderCodec = codec<SignedBlockHeader>('SignedBlockHeader');
export const RequestCodec = codec<Request>('Request');
export const ReplyCodec = codec<Reply>('Reply');
export const DriverRequestCodec = codec<DriverRequest>('DriverRequest');

/** Field number of `signature` in each signed message (used to splice raw bytes). */
export const SignatureField = { Request: 16, Reply: 8, Manifest: 10, SignedBlockHeader: 8 } as const;

/** DriverRequest.block_vec's field number. */
const BLOCK_VEC_FIELD = 19;

/**
 * block_vec alone, encoded as a DriverRequest encodes it (repeated uint64, unpacked: proto2).
 * Protobuf merges concatenated encodings, so a DriverRequest encoded without block_vec followed by
 * these bytes decodes as the request with it; the queues send it once per POST (see queues/ask.ts).
 */
export function encodeBlockVec(ids: readonly bigint[]): Buffer {
  const w = protobuf.Writer.create();
  for (const id of ids) {
    if (id < 0n || id > U64_MAX) throw new MessageError(`DriverRequest.block_vec holds ${id}, out of range for uint64`);
    w.uint32((BLOCK_VEC_FIELD << 3) | 0).uint64(Long.fromBigInt(id, true));
  }
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The block ids encodeBlockVec wrote (packed encodings are read too). */
export function decodeBlockVec(bytes: Uint8Array): bigint[] {
  const r = protobuf.Reader.create(bytes);
  const ids: bigint[] = [];
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 !== BLOCK_VEC_FIELD) throw new MessageError(`field ${tag >>> 3} is not block_vec`);
      if ((tag & 7) === 2) {
        const end = r.uint32() + r.pos;
        while (r.pos < end) ids.push(BigInt.asUintN(64, (r.uint64() as Long).toBigInt()));
      } else if ((tag & 7) === 0) {
        ids.push(BigInt.asUintN(64, (r.uint64() as Long).toBigInt()));
      } else {
        throw new MessageError(`block_vec has wire type ${tag & 7}`);
      }
    }
  } catch (err) {
    if (err instanceof MessageError) throw err;
    throw new MessageError(`malformed block_vec: ${(err as Error).message}`);
  }
  return ids;
}

/** Request.blocks' field number. */
const REQUEST_BLOCKS_FIELD = 9;

/**
 * How many `blocks` an encoded Request holds, counted without decoding them, stopping at `upTo`.
 * @throws MessageError when the bytes are not a protobuf message
 */
export function countRequestBlocks(bytes: Uint8Array, upTo = Infinity): number {
  const r = protobuf.Reader.create(bytes);
  let n = 0;
  try {
    while (r.pos < r.len && n < upTo) {
      const tag = r.uint32();
      if (tag >>> 3 === REQUEST_BLOCKS_FIELD) n++;
      r.skipType(tag & 7);
    }
  } catch (err) {
    throw new MessageError(`malformed Request: ${(err as Error).message}`);
  }
  return n;
}
