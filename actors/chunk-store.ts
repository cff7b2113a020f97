// The serialized-chunk store owned by the cache actor: one file per chunk under a byte budget with
// LRU eviction, fronted by an in-memory tier so hot hits never touch the disk.
//
// Layout: <dir>/<h0h1>/<sha256(key) hex>. The index is keyed by that hash alone, so a restart rebuilds
// it from file names and stat() without opening any file; get/delete hash the caller's key.
// Recency lives only in memory (no utimes on hits): after a restart the order is the files' mtime,
// i.e. the order they were written. That costs nothing per hit and is good enough for a cache.
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { LRUCache } from 'lru-cache';

export interface ChunkStoreOptions {
  /** Folder that holds the chunk files; created if missing. */
  dir: string;
  /** Budget in bytes of chunk data on disk. */
  maxBytes: number;
  /** Budget of the in-memory tier in bytes; default 64 MiB, 0 disables it. */
  memoryBytes?: number;
}

export interface ChunkStoreStats {
  bytes: number;
  entries: number;
  memoryBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  maxBytes: number;
}

/** Chunks up to this size are written synchronously (see writeChunk). */
const SYNC_WRITE_MAX = 64 * 1024;
const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
const CHUNK_FILE_NAME = /^[0-9a-f]{64}$/;
const TEMP_MARKER = '.tmp-';
const SHARDS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** One chunk on disk. `key` is known once the chunk was put or read in this process. */
interface DiskEntry {
  size: number;
  key: string | undefined;
}

/** One chunk in the memory tier; the hash lets a memory hit refresh disk recency without hashing. */
interface MemoryEntry {
  hash: string;
  bytes: Buffer;
}

function hashOfKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Where the chunk stored under `key` lives below `dir` (for tools and tests). */
export function chunkFilePath(dir: string, key: string): string {
  const hash = hashOfKey(key);
  return `${resolve(dir)}${sep}${hash.slice(0, 2)}${sep}${hash}`;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

// lru-cache needs positive sizes; an empty chunk is charged one byte.
function chargedSize(size: number): number {
  return size > 0 ? size : 1;
}

function ignoreError(): void {}

export class ChunkStore {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly index: LRUCache<string, DiskEntry>;
  private readonly memory: LRUCache<string, MemoryEntry> | null;
  // Per-hash chain of mutations (put, delete, unlink after eviction) so they never interleave on one path.
  private readonly pending = new Map<string, Promise<void>>();
  // Collects the unlinks of chunks evicted by the index.set() running right now (see writeChunk).
  private evictionSink: Promise<void>[] | null = null;
  private tempCounter = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private closed = false;

  private constructor(opts: ChunkStoreOptions) {
    this.dir = resolve(opts.dir);
    this.maxBytes = opts.maxBytes;
    this.index = new LRUCache<string, DiskEntry>({
      maxSize: opts.maxBytes,
      sizeCalculation: (entry) => chargedSize(entry.size),
      dispose: (entry, hash, reason) => this.onDiskEntryGone(entry, hash, reason),
    });
    const memoryBytes = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    this.memory = memoryBytes > 0
      ? new LRUCache<string, MemoryEntry>({ maxSize: memoryBytes, sizeCalculation: (e) => chargedSize(e.bytes.length) })
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
    // All shard folders exist from here on, so put() never has to mkdir.
    await Promise.all(SHARDS.map((shard) => mkdir(`${store.dir}${sep}${shard}`, { recursive: true })));
    await store.rebuildIndex();
    await store.drainPending();
    return store;
  }

  /** The chunk's bytes, or null on a miss. The Buffer is shared with other readers: do not mutate it. */
  get(key: string): Promise<Buffer | null> {
    if (this.closed) return Promise.reject(closedError());
    const hot = this.memory?.get(key);
    if (hot !== undefined) {
      this.index.get(hot.hash); // a hot chunk must stay recent on disk too
      this.hits++;
      return Promise.resolve(hot.bytes);
    }
    return this.readFromDisk(key);
  }

  /** Stores a chunk (atomically; replaces any chunk of that key). A chunk over maxBytes is not stored. */
  async put(key: string, bytes: Uint8Array): Promise<void> {
    if (this.closed) throw closedError();
    if (bytes.length > this.maxBytes) return;
    // The memory tier keeps its own copy so a caller reusing its buffer cannot change a stored chunk.
    const hotCopy = this.memory ? Buffer.from(bytes) : null;
    const hash = hashOfKey(key);
    const evictedUnlinks = await this.serialize(hash, () => this.writeChunk(key, hash, hotCopy ?? bytes, hotCopy));
    // Waited outside the lock: an unlink queues on another hash's chain, which may be waiting on us.
    await Promise.all(evictedUnlinks);
  }

  /** Removes a chunk from both tiers and the disk; true if it was stored. */
  async delete(key: string): Promise<boolean> {
    if (this.closed) throw closedError();
    const hash = hashOfKey(key);
    return this.serialize(hash, async () => {
      const existed = this.index.delete(hash); // dispose drops the memory copy
      await rm(this.pathOf(hash), { force: true });
      return existed;
    });
  }

  has(key: string): boolean {
    if (this.memory?.has(key)) return true;
    return this.index.has(hashOfKey(key));
  }

  stats(): ChunkStoreStats {
    return {
      bytes: this.index.calculatedSize,
      entries: this.index.size,
      memoryBytes: this.memory?.calculatedSize ?? 0,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      maxBytes: this.maxBytes,
    };
  }

  /** Waits for every pending write, delete and unlink, then refuses further calls. Files stay. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.drainPending();
    this.memory?.clear();
  }

  private pathOf(hash: string): string {
    return `${this.dir}${sep}${hash.slice(0, 2)}${sep}${hash}`;
  }

  private async readFromDisk(key: string): Promise<Buffer | null> {
    const hash = hashOfKey(key);
    const entry = this.index.get(hash);
    if (entry === undefined) {
      this.misses++;
      return null;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(hash));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // Evicted or deleted since the lookup (or removed behind our back): a miss, never an error.
      this.misses++;
      void this.forgetIfFileMissing(hash).catch(ignoreError);
      return null;
    }
    // Cache only if no put/delete/eviction replaced the entry meanwhile, so memory never holds stale bytes.
    if (this.index.peek(hash) === entry) {
      entry.key = key;
      this.memory?.set(key, { hash, bytes });
    }
    this.hits++;
    return bytes;
  }

  /** Runs under the hash's lock. Returns the unlinks of chunks this insert evicted. */
  private async writeChunk(
    key: string, hash: string, bytes: Uint8Array, hotCopy: Buffer | null,
  ): Promise<Promise<void>[]> {
    const finalPath = this.pathOf(hash);
    const tempPath = `${finalPath}${TEMP_MARKER}${process.pid}-${++this.tempCounter}`;
    try {
      // Temp + rename: a crash never leaves a torn chunk visible. No fsync: this is a cache on the
      // GET path, a chunk lost to a power cut is only a miss, and readers verify chunk hashes.
      if (bytes.length <= SYNC_WRITE_MAX) {
        // Small writes to the page cache cost less done at once than as four thread-pool trips.
        writeFileSync(tempPath, bytes, { flag: 'wx' });
        renameSync(tempPath, finalPath);
      } else {
        await writeFile(tempPath, bytes, { flag: 'wx' });
        await rename(tempPath, finalPath);
      }
    } catch (err) {
      await rm(tempPath, { force: true });
      throw err;
    }
    const evictedUnlinks: Promise<void>[] = [];
    this.evictionSink = evictedUnlinks;
    try {
      this.index.set(hash, { size: bytes.length, key }); // dispose of the old entry drops its memory copy
    } finally {
      this.evictionSink = null;
    }
    if (hotCopy) this.memory?.set(key, { hash, bytes: hotCopy });
    return evictedUnlinks;
  }

  // Called synchronously by the disk index whenever an entry leaves it.
  private onDiskEntryGone(entry: DiskEntry, hash: string, reason: LRUCache.DisposeReason): void {
    if (entry.key !== undefined) this.memory?.delete(entry.key);
    if (reason !== 'evict') return; // 'set': rename already replaced the file; 'delete': delete() unlinks
    this.evictions++;
    const unlink = this.serialize(hash, async () => {
      // A put queued ahead of us may have re-stored this hash; its file is not ours to remove.
      if (!this.index.has(hash)) await rm(this.pathOf(hash), { force: true });
    }).catch(ignoreError);
    this.evictionSink?.push(unlink);
  }

  private forgetIfFileMissing(hash: string): Promise<void> {
    return this.serialize(hash, async () => {
      const entry = this.index.peek(hash);
      if (entry === undefined) return;
      try {
        await stat(this.pathOf(hash));
      } catch (err) {
        if (isNotFound(err) && this.index.peek(hash) === entry) this.index.delete(hash);
      }
    });
  }

  /** Chains `task` after every earlier mutation of `hash`; a failed task does not block later ones. */
  private serialize<T>(hash: string, task: () => Promise<T>): Promise<T> {
    const before = this.pending.get(hash) ?? Promise.resolve();
    const run = before.then(task);
    const settled = run.then(ignoreError, ignoreError);
    this.pending.set(hash, settled);
    void settled.then(() => {
      if (this.pending.get(hash) === settled) this.pending.delete(hash);
    });
    return run;
  }

  private async drainPending(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending.values());
  }

  /** Indexes the chunk files oldest first, removes stray temp files, then evicts down to maxBytes. */
  private async rebuildIndex(): Promise<void> {
    const found: { hash: string; size: number; mtimeMs: number }[] = [];
    await Promise.all(SHARDS.map(async (shard) => {
      const folder = `${this.dir}${sep}${shard}`;
      const names = await readdir(folder);
      await Promise.all(names.map(async (name) => {
        const path = `${folder}${sep}${name}`;
        if (name.includes(TEMP_MARKER)) {
          await rm(path, { force: true }); // left by a crash mid-write: never a valid chunk
          return;
        }
        if (!CHUNK_FILE_NAME.test(name) || !name.startsWith(shard)) return;
        try {
          const info = await stat(path);
          if (info.isFile()) found.push({ hash: name, size: info.size, mtimeMs: info.mtimeMs });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }));
    }));
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { hash, size } of found) {
      if (size > this.maxBytes) {
        await rm(this.pathOf(hash), { force: true }); // could never be indexed under this budget
        continue;
      }
      this.index.set(hash, { size, key: undefined }); // overflow evicts the oldest, as on any insert
    }
  }
}

function closedError(): Error {
  return new Error('ChunkStore is closed');
}
