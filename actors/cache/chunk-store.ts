// The serialized-chunk store owned by the cache actor: a log of segment files under a byte budget,
// an in-memory index, and an in-memory tier so hot hits never touch the disk.
//
// Why a log: the first version kept one file per chunk, and on this kind of disk (ext4, no journal)
// the kernel's inode allocation skips every recently deleted inode one by one; creating the cache
// file took 52-64% of the http actor's time on cache-miss GETs. Here a put is one pwrite at the
// end of the active segment, a delete appends a tombstone, and eviction drops the oldest segment
// whole: ~16 files however many chunks. Recency is kept by copying a chunk that is read while it
// sits in the oldest quarter of the log forward to its head, so hot chunks outlive their segment.
// A restart rebuilds the index by scanning the segments in order (see chunk-records.ts).
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, unlinkSync, writevSync, read, writev } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { LRUCache } from 'lru-cache';
import type { CacheHint, ChunkStoreStats } from '../../http/driver-pipeline.js';
import { chunkOfRecord, encodeRecord, RECORD_HEADER, recordKeyLength, RecordKind, scanSegment, type EncodedRecord } from './chunk-records.js';

export interface ChunkStoreOptions {
  /** Folder that holds the segment files; created if missing. */
  dir: string;
  /** Budget in bytes of the segment files on disk. */
  maxBytes: number;
  /** Budget of the in-memory tier in bytes; default 64 MiB, 0 disables it. */
  memoryBytes?: number;
}


/** Records up to this size are read and written synchronously: cheaper than a thread-pool trip. */
const SYNC_IO_MAX = 64 * 1024;
const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
/** The budget is split into about this many segments: eviction frees 1/SEGMENTS of the store. */
const SEGMENTS = 16;
const MAX_SEGMENT_BYTES = 64 << 20;
const SEGMENT_NAME = /^seg-([0-9]{12})\.log$/;
// Shard folders of the one-file-per-chunk layout, removed on open.
const OLD_LAYOUT_SHARD = /^[0-9a-f]{2}$/;

const readAsync = promisify(read);
const writevAsync = promisify(writev);

interface Segment {
  id: number;
  path: string;
  fd: number;
  /** Bytes written or reserved. */
  size: number;
  /** Keys whose record went here (some may since live elsewhere or be deleted). */
  keys: string[];
  /** Async reads and writes in flight: the fd is closed only when none is left. */
  pins: number;
  evicted: boolean;
  /** Takes appends; segments found on open and segments whose write failed do not. */
  writable: boolean;
}

interface Location {
  segment: Segment;
  offset: number;
  keyLength: number;
  size: number;
}

function segmentPath(dir: string, id: number): string {
  return `${dir}${sep}seg-${String(id).padStart(12, '0')}.log`;
}

function ignoreError(): void {}

// lru-cache needs positive sizes; an empty chunk is charged one byte.
function chargedSize(size: number): number {
  return size > 0 ? size : 1;
}

export class ChunkStore {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentTarget: number;
  private readonly index = new Map<string, Location>();
  private readonly memory: LRUCache<string, Buffer> | null;
  /** Oldest first; the last one takes appends. */
  private readonly segments: Segment[] = [];
  private nextSegmentId = 1;
  private diskBytes = 0;
  // Latest operation number of each key with an async put in flight: a put applies only if no
  // later put or delete of its key started meanwhile.
  private readonly inFlight = new Map<string, number>();
  private operations = 0;
  private readonly background = new Set<Promise<unknown>>();
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private closed = false;

  private constructor(opts: ChunkStoreOptions) {
    this.dir = resolve(opts.dir);
    this.maxBytes = opts.maxBytes;
    this.segmentTarget = Math.max(1, Math.min(MAX_SEGMENT_BYTES, Math.floor(opts.maxBytes / SEGMENTS)));
    const memoryBytes = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    this.memory = memoryBytes > 0
      ? new LRUCache<string, Buffer>({ maxSize: memoryBytes, sizeCalculation: (b) => chargedSize(b.length) })
      : null;
  }

  static async open(opts: ChunkStoreOptions): Promise<ChunkStore> {
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes <= 0) {
      throw new RangeError(`maxBytes must be a positive integer, got ${opts.maxBytes}`);
    }
    const memoryBytes = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    if (!Number.isSafeInteger(memoryBytes) || memoryBytes < 0) {
      throw new RangeError(`memoryBytes must be a non-negative integer, got ${opts.memoryBytes}`);
    }
    const store = new ChunkStore(opts);
    await mkdir(store.dir, { recursive: true });
    await store.rebuild();
    return store;
  }

  /** The chunk's bytes, or null on a miss. The Buffer is shared with other readers: do not mutate it. */
  async get(key: string, hint: CacheHint = {}): Promise<Buffer | null> {
    if (this.closed) throw closedError();
    const hot = this.memory?.get(key);
    if (hot !== undefined) {
      this.hits++;
      this.keepRecent(key, hot);
      return hot;
    }
    const at = this.index.get(key);
    if (at === undefined) {
      this.misses++;
      return null;
    }
    const bytes = await this.readChunk(at);
    // Deleted, replaced or evicted meanwhile, or corrupt: a miss (a corrupt record is forgotten).
    if (bytes === null || this.index.get(key) !== at) {
      if (bytes === null && this.index.get(key) === at) this.index.delete(key);
      this.misses++;
      return null;
    }
    this.hits++;
    if (hint.memory !== false) this.memory?.set(key, bytes);
    this.keepRecent(key, bytes, hint);
    return bytes;
  }

  /**
   * Stores a chunk (replacing any chunk of that key). A chunk over maxBytes is not stored. The
   * bytes are kept as given, not copied (a copy of 1 MiB into fresh memory costs more than the
   * write here): the caller must not change them afterwards.
   */
  async put(key: string, bytes: Uint8Array, hint: CacheHint = {}): Promise<void> {
    if (this.closed) throw closedError();
    const record = encodeRecord(RecordKind.Chunk, Buffer.from(key), owned(bytes));
    if (record.length > this.maxBytes) return;
    const op = ++this.operations;
    if (record.length <= SYNC_IO_MAX) {
      if (this.inFlight.has(key)) this.inFlight.set(key, op); // supersedes a slower put of the key
      this.storeSync(key, record, hint);
      return;
    }
    this.inFlight.set(key, op);
    const at = this.reserve(key, record);
    at.segment.pins++;
    this.enforceBudget();
    let written = false;
    try {
      await writeAll(at.segment.fd, record, at.offset);
      written = true;
    } catch (err) {
      at.segment.writable = false; // its tail may now hold garbage: append elsewhere
      throw err;
    } finally {
      this.unpin(at.segment);
      if (this.inFlight.get(key) === op) {
        this.inFlight.delete(key);
        if (written) this.install(key, at, record, hint);
      }
    }
  }

  /** Removes a chunk from both tiers; true if it was stored. */
  async delete(key: string): Promise<boolean> {
    if (this.closed) throw closedError();
    const op = ++this.operations;
    const writing = this.inFlight.has(key);
    if (writing) this.inFlight.set(key, op);
    const existed = this.index.delete(key);
    const inMemory = this.memory?.delete(key) ?? false;
    // Without a tombstone a restart would find the older record (or the one being written) and
    // serve it again.
    if (existed || writing) {
      this.appendSync(key, encodeRecord(RecordKind.Tombstone, Buffer.from(key), null));
      this.enforceBudget();
    }
    return existed || inMemory;
  }

  has(key: string): boolean {
    return (this.memory?.has(key) ?? false) || this.index.has(key);
  }

  stats(): ChunkStoreStats {
    return {
      bytes: this.diskBytes,
      entries: this.index.size,
      memoryBytes: this.memory?.calculatedSize ?? 0,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      maxBytes: this.maxBytes,
    };
  }

  /** Waits for writes and removals in flight, closes the segments, then refuses further calls. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.background.size > 0) await Promise.all(this.background);
    for (const s of this.segments) closeSync(s.fd);
    this.segments.length = 0;
    this.memory?.clear();
  }

  /** A whole small record: written at once, so nothing can interleave with it. */
  private storeSync(key: string, record: EncodedRecord, hint: CacheHint): void {
    const at = this.appendSync(key, record);
    this.install(key, at, record, hint);
    this.enforceBudget();
  }

  private appendSync(key: string, record: EncodedRecord): Location {
    const at = this.reserve(key, record);
    try {
      writeAllSync(at.segment.fd, record, at.offset);
    } catch (err) {
      at.segment.writable = false; // its tail may now hold garbage: append elsewhere
      throw err;
    }
    return at;
  }

  /** Makes a written record the key's current chunk, unless its segment was evicted meanwhile. */
  private install(key: string, at: Location, record: EncodedRecord, hint: CacheHint): void {
    if (at.segment.evicted) return;
    this.index.set(key, at);
    // A replaced chunk's older bytes must not outlive it in memory.
    if (hint.memory === false) this.memory?.delete(key);
    else this.memory?.set(key, asBuffer(record.data));
  }

  /** Room for a record at the end of the log (see enforceBudget). */
  private reserve(key: string, record: EncodedRecord): Location {
    const length = record.length;
    const keyLength = recordKeyLength(record);
    let active = this.segments.at(-1);
    if (active === undefined || !active.writable || (active.size > 0 && active.size + length > this.segmentTarget)) {
      active = this.createSegment();
    }
    const at: Location = { segment: active, offset: active.size, keyLength, size: length - RECORD_HEADER - keyLength };
    active.size += length;
    active.keys.push(key);
    this.diskBytes += length;
    return at;
  }

  /** Evicts the oldest segments while the log is over budget; the one taking appends stays. */
  private enforceBudget(): void {
    while (this.diskBytes > this.maxBytes && this.segments.length > 1) this.evictOldest();
  }

  private createSegment(): Segment {
    const id = this.nextSegmentId++;
    const path = segmentPath(this.dir, id);
    const segment: Segment = { id, path, fd: openSync(path, 'wx+'), size: 0, keys: [], pins: 0, evicted: false, writable: true };
    this.segments.push(segment);
    return segment;
  }

  private evictOldest(): void {
    const segment = this.segments.shift()!;
    segment.evicted = true;
    this.diskBytes -= segment.size;
    for (const key of segment.keys) {
      if (this.index.get(key)?.segment !== segment) continue;
      this.index.delete(key);
      this.memory?.delete(key);
      if (!this.inFlight.has(key)) this.evictions++; // else its new copy is being written
    }
    segment.keys = [];
    if (segment.pins === 0) this.removeSegment(segment);
  }

  private unpin(segment: Segment): void {
    segment.pins--;
    if (segment.evicted && segment.pins === 0) this.removeSegment(segment);
  }

  // At once, not in the background: the budget is about bytes on disk.
  private removeSegment(segment: Segment): void {
    closeSync(segment.fd);
    try {
      unlinkSync(segment.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private async readChunk(at: Location): Promise<Buffer | null> {
    const length = RECORD_HEADER + at.keyLength + at.size;
    const record = Buffer.allocUnsafeSlow(length);
    if (length <= SYNC_IO_MAX) {
      readAllSync(at.segment.fd, record, at.offset);
      return chunkOfRecord(record, at.keyLength);
    }
    at.segment.pins++;
    try {
      await readAll(at.segment.fd, record, at.offset);
    } finally {
      this.unpin(at.segment);
    }
    return chunkOfRecord(record, at.keyLength);
  }

  /** A chunk read from the oldest quarter of the log is copied to its head, so it is not evicted soon. */
  private keepRecent(key: string, bytes: Buffer, hint: CacheHint = {}): void {
    const at = this.index.get(key);
    if (at === undefined || this.closed) return;
    const oldest = this.segments[0]!.id;
    const span = this.segments.at(-1)!.id - oldest + 1;
    if (span < 2 || at.segment.id >= oldest + Math.max(1, span / 4)) return;
    this.track(this.put(key, bytes, hint).catch(ignoreError));
  }

  /** Indexes every segment oldest first, cuts torn tails, then evicts down to maxBytes. */
  private async rebuild(): Promise<void> {
    const names = await readdir(this.dir);
    await Promise.all(names.filter((n) => OLD_LAYOUT_SHARD.test(n)).map((n) => rm(`${this.dir}${sep}${n}`, { recursive: true, force: true })));
    const ids = names.map((n) => SEGMENT_NAME.exec(n)?.[1]).filter((m): m is string => m !== undefined).map(Number).sort((a, b) => a - b);
    for (const id of ids) {
      const path = segmentPath(this.dir, id);
      const fd = openSync(path, 'r+');
      const segment: Segment = { id, path, fd, size: 0, keys: [], pins: 0, evicted: false, writable: false };
      const fileSize = fstatSync(fd).size;
      const end = scanSegment(fd, fileSize, (r) => {
        if (r.kind === RecordKind.Tombstone) {
          this.index.delete(r.key);
          return;
        }
        this.index.set(r.key, { segment, offset: r.offset, keyLength: r.keyLength, size: r.size });
        segment.keys.push(r.key);
      });
      this.nextSegmentId = id + 1;
      if (end === 0) {
        closeSync(fd);
        await rm(path, { force: true });
        continue;
      }
      if (end < fileSize) ftruncateSync(fd, end); // a torn or corrupt record and all after it
      segment.size = end;
      this.diskBytes += end;
      this.segments.push(segment);
    }
    // Appends go to a fresh segment (made on the first put): older ones are never written again.
    while (this.diskBytes > this.maxBytes && this.segments.length > 0) this.evictOldest();
  }
}

/** The parts of a record from byte `done` on (after a short write). */
function partsFrom(record: EncodedRecord, done: number): Uint8Array[] {
  const parts = record.data ? [record.head, record.data] : [record.head];
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (done >= p.length) done -= p.length;
    else {
      out.push(done > 0 ? p.subarray(done) : p);
      done = 0;
    }
  }
  return out;
}

function writeAllSync(fd: number, record: EncodedRecord, position: number): void {
  for (let done = 0; done < record.length;) done += writevSync(fd, partsFrom(record, done), position + done);
}

async function writeAll(fd: number, record: EncodedRecord, position: number): Promise<void> {
  for (let done = 0; done < record.length;) done += (await writevAsync(fd, partsFrom(record, done), position + done)).bytesWritten;
}

const EMPTY = Buffer.alloc(0);

function asBuffer(data: Uint8Array | null): Buffer {
  if (!data) return EMPTY;
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** A small view of a much larger buffer is copied, so that the store does not keep the rest alive. */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength * 2 < bytes.buffer.byteLength && bytes.buffer.byteLength > 64 * 1024 ? Buffer.from(bytes) : bytes;
}

function readAllSync(fd: number, buf: Buffer, position: number): void {
  for (let done = 0; done < buf.length;) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error('chunk record ends past the end of its segment');
    done += n;
  }
}

async function readAll(fd: number, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesRead } = await readAsync(fd, buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error('chunk record ends past the end of its segment');
    done += bytesRead;
  }
}

function closedError(): Error {
  return new Error('ChunkStore is closed');
}
