// A deliberately naive, independent implementation of the Syndicate wire format, written from
// ../shared/WIRE.md alone, to check proto/ against. It must never import from proto/: its
// value is that it shares no code (and no protobufjs) with what it checks. Signatures are done
// by hand as well (EMSA-PSS over raw RSA), so Node's own PSS code is checked too.
import { createHash, constants, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';

export type ScalarType = 'uint64' | 'int64' | 'uint32' | 'int32' | 'bool' | 'string' | 'bytes';

export interface FieldSpec {
  name: string;
  number: number;
  type: ScalarType | MessageSpec;
  required?: true;
  repeated?: true;
}

export interface MessageSpec {
  name: string;
  fields: FieldSpec[];
}

// ---- schemas, transcribed from WIRE.md ----

export const ManifestBlockSpec: MessageSpec = {
  name: 'ManifestBlock',
  fields: [
    { name: 'block_id', number: 1, type: 'uint64', required: true },
    { name: 'block_version', number: 2, type: 'int64', required: true },
    { name: 'hash', number: 3, type: 'bytes' },
    { name: 'owner_id', number: 4, type: 'uint64' },
    { name: 'caps', number: 5, type: 'uint32' },
    { name: 'chunk_type', number: 6, type: 'int32' },
    { name: 'offset', number: 7, type: 'uint64' },
    { name: 'size', number: 8, type: 'uint64' },
    { name: 'logical_offset', number: 9, type: 'uint64' },
    { name: 'logical_len', number: 10, type: 'uint64' },
  ],
};

export const ManifestSpec: MessageSpec = {
  name: 'Manifest',
  fields: [
    { name: 'volume_id', number: 1, type: 'uint64', required: true },
    { name: 'coordinator_id', number: 2, type: 'uint64', required: true },
    { name: 'owner_id', number: 3, type: 'uint64', required: true },
    { name: 'file_id', number: 4, type: 'uint64', required: true },
    { name: 'file_version', number: 5, type: 'int64', required: true },
    { name: 'mtime_sec', number: 6, type: 'int64', required: true },
    { name: 'mtime_nsec', number: 7, type: 'int32', required: true },
    { name: 'size', number: 8, type: 'uint64', required: true },
    { name: 'blocks', number: 9, type: ManifestBlockSpec, repeated: true },
    { name: 'signature', number: 10, type: 'string', required: true },
  ],
};

export const SignedBlockHeaderSpec: MessageSpec = {
  name: 'SignedBlockHeader',
  fields: [
    { name: 'volume_id', number: 1, type: 'uint64', required: true },
    { name: 'file_id', number: 2, type: 'uint64', required: true },
    { name: 'file_version', number: 3, type: 'int64', required: true },
    { name: 'block_id', number: 4, type: 'uint64', required: true },
    { name: 'block_version', number: 5, type: 'int64', required: true },
    { name: 'block_hash', number: 6, type: 'bytes', required: true },
    { name: 'gateway_id', number: 7, type: 'uint64', required: true },
    { name: 'signature', number: 8, type: 'string', required: true },
  ],
};

export const RequestSpec: MessageSpec = {
  name: 'Request',
  fields: [
    { name: 'volume_version', number: 1, type: 'uint64', required: true },
    { name: 'cert_version', number: 2, type: 'uint64', required: true },
    { name: 'request_type', number: 3, type: 'int32', required: true },
    { name: 'volume_id', number: 4, type: 'uint64', required: true },
    { name: 'coordinator_id', number: 5, type: 'uint64', required: true },
    { name: 'file_id', number: 6, type: 'uint64', required: true },
    { name: 'file_version', number: 7, type: 'int64', required: true },
    { name: 'fs_path', number: 8, type: 'string', required: true },
    { name: 'blocks', number: 9, type: ManifestBlockSpec, repeated: true },
    { name: 'new_fs_path', number: 10, type: 'string' },
    { name: 'new_size', number: 11, type: 'uint64' },
    { name: 'new_manifest_mtime_sec', number: 12, type: 'int64' },
    { name: 'new_manifest_mtime_nsec', number: 13, type: 'int32' },
    { name: 'user_id', number: 14, type: 'uint64', required: true },
    { name: 'src_gateway_id', number: 15, type: 'uint64', required: true },
    { name: 'signature', number: 16, type: 'string', required: true },
    { name: 'message_nonce', number: 17, type: 'uint64', required: true },
    { name: 'new_owner_id', number: 18, type: 'uint64' },
    { name: 'new_mode', number: 19, type: 'int32' },
    { name: 'new_mtime_sec', number: 20, type: 'int64' },
    { name: 'new_mtime_nsec', number: 21, type: 'int32' },
    { name: 'write_off', number: 22, type: 'uint64' },
    { name: 'write_len', number: 23, type: 'uint64' },
    { name: 'xattr_name', number: 24, type: 'string' },
    { name: 'xattr_value', number: 25, type: 'string' },
    { name: 'xattr_flags', number: 26, type: 'int32' },
    { name: 'gateway_cert_version', number: 27, type: 'uint64' },
  ],
};

export const ReplySpec: MessageSpec = {
  name: 'Reply',
  fields: [
    { name: 'volume_version', number: 1, type: 'uint64', required: true },
    { name: 'cert_version', number: 2, type: 'uint64', required: true },
    { name: 'message_nonce', number: 3, type: 'uint64', required: true },
    { name: 'error_code', number: 4, type: 'int32', required: true },
    { name: 'user_id', number: 5, type: 'uint64', required: true },
    { name: 'gateway_id', number: 6, type: 'uint64', required: true },
    { name: 'gateway_type', number: 7, type: 'uint64', required: true },
    { name: 'signature', number: 8, type: 'string', required: true },
    { name: 'xattr_names', number: 9, type: 'string', repeated: true },
    { name: 'xattr_value', number: 10, type: 'string' },
  ],
};

// ---- encoding ----

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** Base-128 varint of a value already reduced to [0, 2^64). */
export function varint(value: bigint): number[] {
  if (value < 0n || value >= 1n << 64n) throw new RangeError(`varint out of range: ${value}`);
  const out: number[] = [];
  let v = value;
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? low : low | 0x80);
  } while (v !== 0n);
  return out;
}

export function tag(fieldNumber: number, wireType: number): number[] {
  return varint(BigInt(fieldNumber) * 8n + BigInt(wireType));
}

/** One length-delimited field with arbitrary contents (e.g. an unknown field for tests). */
export function lengthDelimitedField(fieldNumber: number, contents: Uint8Array): Uint8Array {
  return Uint8Array.from([...tag(fieldNumber, WIRE_LEN), ...varint(BigInt(contents.length)), ...contents]);
}

function inRange(value: bigint, min: bigint, max: bigint, where: string): bigint {
  if (value < min || value > max) throw new RangeError(`${where}: ${value} out of range`);
  return value;
}

function scalarBytes(type: ScalarType, value: unknown, where: string): { wire: number; bytes: number[] } {
  switch (type) {
    case 'uint64':
      return { wire: WIRE_VARINT, bytes: varint(inRange(value as bigint, 0n, (1n << 64n) - 1n, where)) };
    case 'int64': // proto2 int64: negatives are the 64-bit two's complement (10 bytes), no zig-zag
      return { wire: WIRE_VARINT, bytes: varint(BigInt.asUintN(64, inRange(value as bigint, -(1n << 63n), (1n << 63n) - 1n, where))) };
    case 'uint32':
      return { wire: WIRE_VARINT, bytes: varint(inRange(BigInt(value as number), 0n, 0xffffffffn, where)) };
    case 'int32': // sign-extended to 64 bits, so negatives also take 10 bytes
      return { wire: WIRE_VARINT, bytes: varint(BigInt.asUintN(64, inRange(BigInt(value as number), -(1n << 31n), (1n << 31n) - 1n, where))) };
    case 'bool':
      return { wire: WIRE_VARINT, bytes: [value ? 1 : 0] };
    case 'string': {
      const utf8 = Buffer.from(value as string, 'utf8');
      return { wire: WIRE_LEN, bytes: [...varint(BigInt(utf8.length)), ...utf8] };
    }
    case 'bytes': {
      const raw = value as Uint8Array;
      return { wire: WIRE_LEN, bytes: [...varint(BigInt(raw.length)), ...raw] };
    }
  }
}

/**
 * Encodes `message` (plain object, bigint for 64-bit fields) by `spec`: fields in field-number
 * order, required ones always, repeated ones unpacked; `extra` bytes are appended verbatim.
 */
export function handEncode(spec: MessageSpec, message: object, extra: Uint8Array = new Uint8Array()): Uint8Array {
  const values = message as Record<string, unknown>;
  const out: number[] = [];
  const fields = [...spec.fields].sort((a, b) => a.number - b.number);
  for (const field of fields) {
    const value = values[field.name];
    const where = `${spec.name}.${field.name}`;
    if (value === undefined) {
      if (field.required) throw new Error(`${where} is required`);
      continue;
    }
    const items = field.repeated ? (value as unknown[]) : [value];
    for (const item of items) {
      if (typeof field.type === 'string') {
        const { wire, bytes } = scalarBytes(field.type, item, where);
        out.push(...tag(field.number, wire), ...bytes);
      } else {
        const sub = handEncode(field.type, item as object);
        out.push(...tag(field.number, WIRE_LEN), ...varint(BigInt(sub.length)), ...sub);
      }
    }
  }
  return Uint8Array.from([...out, ...extra]);
}

// ---- a top-level field reader (enough to cut messages apart) ----

export interface RawField {
  number: number;
  wire: number;
  /** Varint value, or the contents of a length-delimited field. */
  value: bigint | Uint8Array;
  start: number;
  end: number;
}

export function readTopLevelFields(bytes: Uint8Array): RawField[] {
  const fields: RawField[] = [];
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= bytes.length) throw new RangeError('truncated');
      const b = bytes[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (pos < bytes.length) {
    const start = pos;
    const key = readVarint();
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value: bigint | Uint8Array;
    if (wire === WIRE_VARINT) value = readVarint();
    else if (wire === WIRE_LEN) {
      const len = Number(readVarint());
      value = bytes.subarray(pos, pos + len);
      pos += len;
    } else throw new Error(`wire type ${wire} not expected in Syndicate messages`);
    fields.push({ number, wire, value, start, end: pos });
  }
  return fields;
}

/** The message with every occurrence of field `fieldNumber` cut out. */
export function withoutField(bytes: Uint8Array, fieldNumber: number): Uint8Array {
  const kept = readTopLevelFields(bytes).filter((f) => f.number !== fieldNumber);
  return Buffer.concat(kept.map((f) => bytes.subarray(f.start, f.end)));
}

/** The message with field `fieldNumber` written twice. */
export function withDuplicatedField(bytes: Uint8Array, fieldNumber: number): Uint8Array {
  const field = readTopLevelFields(bytes).find((f) => f.number === fieldNumber);
  if (!field) throw new Error(`field ${fieldNumber} not present`);
  return Buffer.concat([bytes, bytes.subarray(field.start, field.end)]);
}

export function stringField(bytes: Uint8Array, fieldNumber: number): string {
  const field = readTopLevelFields(bytes).find((f) => f.number === fieldNumber);
  if (!field || !(field.value instanceof Uint8Array)) throw new Error(`no string field ${fieldNumber}`);
  return Buffer.from(field.value).toString('utf8');
}

// ---- RSASSA-PSS by hand (RFC 8017 §8.1 / §9.1) over raw RSA ----

export interface PssParameters {
  /** Salt length in bytes; Syndicate uses 32. */
  saltLength: number;
  /** Hash of MGF1; Syndicate uses SHA-256 (the message hash is always SHA-256). */
  mgf1Hash: 'sha256' | 'sha1';
}

export const SYNDICATE_PSS: PssParameters = { saltLength: 32, mgf1Hash: 'sha256' };
const H_LEN = 32;

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function mgf1(seed: Uint8Array, length: number, hash: string): Buffer {
  const out: Buffer[] = [];
  let produced = 0;
  for (let counter = 0; produced < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = createHash(hash).update(seed).update(c).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

function modulusBits(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new Error('not an RSA key');
  return bits;
}

/** Signs `message` with RSASSA-PSS(SHA-256) and returns the signature as padded standard base64. */
export function handPssSign(message: Uint8Array, privateKey: KeyObject, params: PssParameters = SYNDICATE_PSS): string {
  const modBits = modulusBits(privateKey);
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const salt = randomBytes(params.saltLength);
  const h = sha256(Buffer.alloc(8), sha256(message), salt);
  const db = Buffer.concat([Buffer.alloc(emLen - params.saltLength - H_LEN - 2), Buffer.from([1]), salt]);
  const mask = mgf1(h, db.length, params.mgf1Hash);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const em = Buffer.concat([Buffer.alloc(k - emLen), db, h, Buffer.from([0xbc])]);
  // Raw RSA private operation: EM^d mod n.
  const signature = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em);
  return signature.toString('base64');
}

/** Verifies a base64 RSASSA-PSS(SHA-256) signature; exactly the given salt length and MGF1 hash are accepted. */
export function handPssVerify(message: Uint8Array, signatureB64: string, publicKey: KeyObject, params: PssParameters = SYNDICATE_PSS): boolean {
  const modBits = modulusBits(publicKey);
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const signature = Buffer.from(signatureB64, 'base64');
  if (signature.length !== k) return false;
  let full: Buffer;
  try {
    full = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature); // s^e mod n
  } catch {
    return false;
  }
  if (full.subarray(0, k - emLen).some((b) => b !== 0)) return false;
  const em = full.subarray(k - emLen);
  if (em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - H_LEN - 1));
  const h = em.subarray(emLen - H_LEN - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((db[0]! & ~topMask & 0xff) !== 0) return false;
  const mask = mgf1(h, db.length, params.mgf1Hash);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= topMask;
  const psLen = emLen - H_LEN - params.saltLength - 2;
  if (db.subarray(0, psLen).some((b) => b !== 0) || db[psLen] !== 1) return false;
  const salt = db.subarray(db.length - params.saltLength);
  return sha256(Buffer.alloc(8), sha256(message), salt).equals(h);
}

/**
 * Encodes and signs a message the Syndicate way, by hand: encode with signature "", sign those
 * bytes, re-encode with the base64 signature. Returns both encodings.
 */
export function handSignMessage(
  spec: MessageSpec, message: object, privateKey: KeyObject,
  options: { extra?: Uint8Array; pss?: PssParameters } = {},
): { unsigned: Uint8Array; signed: Uint8Array; signature: string } {
  const unsigned = handEncode(spec, { ...message, signature: '' }, options.extra);
  const signature = handPssSign(unsigned, privateKey, options.pss);
  const signed = handEncode(spec, { ...message, signature }, options.extra);
  return { unsigned, signed, signature };
}
