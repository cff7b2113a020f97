// The record format of the chunk store's segment files, and the scan that reads them back.
//
// A segment is records back to back, each:
//   u32 magic "SGC1" | u32 CRC-32 of everything after it | u32 data length | u16 key length |
//   u8 kind (1 chunk, 2 tombstone) | u8 0 | key (UTF-8) | data
// All big-endian. The CRC covers lengths, kind, key and data, so a torn or stale tail found after a
// crash is recognised and cut off instead of being served.
import { readSync } from 'node:fs';
import zlib from 'node:zlib';

export const RECORD_HEADER = 16;
export const MAX_KEY_BYTES = 0xffff;
const MAGIC = 0x53474331;

export const RecordKind = { Chunk: 1, Tombstone: 2 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

// zlib.crc32 arrived in Node 20.15; earlier 20.x releases get the table-driven equivalent.
const nativeCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
const crc32: (data: Uint8Array, value?: number) => number = nativeCrc32 ?? tableCrc32();

function tableCrc32(): (data: Uint8Array, value?: number) => number {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return (data, value = 0) => {
    let c = (value ^ 0xffffffff) >>> 0;
    for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
}

/** A record ready to append: its header and key, then the chunk's bytes as given (not copied). */
export interface EncodedRecord {
  head: Buffer;
  data: Uint8Array | null;
  length: number;
}

/** One whole record. The chunk is not copied: the caller must not change it afterwards. */
export function encodeRecord(kind: RecordKind, key: Buffer, data: Uint8Array | null): EncodedRecord {
  if (key.length > MAX_KEY_BYTES) throw new RangeError(`chunk key of ${key.length} bytes is longer than ${MAX_KEY_BYTES}`);
  const size = data?.length ?? 0;
  const head = Buffer.allocUnsafe(RECORD_HEADER + key.length);
  head.writeUInt32BE(MAGIC, 0);
  head.writeUInt32BE(size, 8);
  head.writeUInt16BE(key.length, 12);
  head[14] = kind;
  head[15] = 0;
  key.copy(head, RECORD_HEADER);
  const crc = crc32(head.subarray(8));
  // Only non-empty data goes on: zlib answers 0 for an empty buffer that has no memory behind it.
  head.writeUInt32BE(data && size > 0 ? crc32(data, crc) : crc, 4);
  return { head, data: size > 0 ? data : null, length: head.length + size };
}

/** The key length an encoded record declares. */
export function recordKeyLength(record: EncodedRecord): number {
  return record.head.readUInt16BE(12);
}

/** The data of a chunk record read back whole, or null if it is not the record it should be. */
export function chunkOfRecord(record: Buffer, keyLength: number): Buffer | null {
  if (record.length < RECORD_HEADER + keyLength || record.readUInt32BE(0) !== MAGIC) return null;
  if (record[14] !== RecordKind.Chunk || record.readUInt16BE(12) !== keyLength) return null;
  if (record.readUInt32BE(8) !== record.length - RECORD_HEADER - keyLength) return null;
  if (crc32(record.subarray(8)) !== record.readUInt32BE(4)) return null;
  return record.subarray(RECORD_HEADER + keyLength);
}

/** What a scan found at one offset of a segment. */
export interface ScannedRecord {
  kind: RecordKind;
  key: string;
  keyLength: number;
  offset: number;
  /** Data bytes (0 for a tombstone). */
  size: number;
  length: number;
}

const SCAN_WINDOW = 4 << 20;

/**
 * Reads a segment's records in order with large sequential reads. Returns the offset where the
 * valid records end: the file's size, or the first torn or corrupt record (everything after it is
 * untrustworthy, since writes may reach the disk out of order).
 */
export function scanSegment(fd: number, fileSize: number, onRecord: (r: ScannedRecord) => void): number {
  let window = Buffer.allocUnsafe(Math.min(SCAN_WINDOW, Math.max(fileSize, RECORD_HEADER)));
  let windowStart = 0;
  let windowEnd = 0;
  const ensure = (from: number, length: number): boolean => {
    if (from + length > fileSize) return false;
    if (from >= windowStart && from + length <= windowEnd) return true;
    if (length > window.length) window = Buffer.allocUnsafe(length);
    const want = Math.min(window.length, fileSize - from);
    let got = 0;
    while (got < want) {
      const n = readSync(fd, window, got, want - got, from + got);
      if (n === 0) break;
      got += n;
    }
    windowStart = from;
    windowEnd = from + got;
    return got >= length;
  };
  let offset = 0;
  while (offset < fileSize) {
    if (!ensure(offset, RECORD_HEADER)) return offset;
    const h = offset - windowStart;
    if (window.readUInt32BE(h) !== MAGIC) return offset;
    const size = window.readUInt32BE(h + 8);
    const keyLength = window.readUInt16BE(h + 12);
    const kind = window[h + 14] as RecordKind;
    const length = RECORD_HEADER + keyLength + size;
    if ((kind !== RecordKind.Chunk && kind !== RecordKind.Tombstone) || !ensure(offset, length)) return offset;
    const start = offset - windowStart;
    const record = window.subarray(start, start + length);
    if (crc32(record.subarray(8)) !== record.readUInt32BE(4)) return offset;
    const key = record.toString('utf8', RECORD_HEADER, RECORD_HEADER + keyLength);
    onRecord({ kind, key, keyLength, offset, size, length });
    offset += length;
  }
  return offset;
}
