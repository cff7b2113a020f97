// Specification of the cache actor's chunk store (a log of segment files), against real files in a
// fresh temp folder.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore, type ChunkStoreOptions } from '../actors/cache/chunk-store.js';

function freshDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgw-chunk-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(t: ExecutionContext, opts: ChunkStoreOptions): Promise<ChunkStore> {
  const store = await ChunkStore.open(opts);
  t.teardown(() => store.close());
  return store;
}

/** A chunk of `size` bytes whose content depends on `seed`, so chunks are told apart by content. */
function chunk(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return bytes;
}

/** Bytes one chunk takes in a segment: the 16-byte record header, its key, its data. */
function recordSize(key: string, size: number): number {
  return 16 + Buffer.byteLength(key) + size;
}

/** Sizes of every file below `dir`, so a leak would show. */
function filesOnDisk(dir: string): number[] {
  const sizes: number[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) sizes.push(fs.statSync(path.join(entry.parentPath, entry.name)).size);
  }
  return sizes;
}

function totalOnDisk(dir: string): number {
  return filesOnDisk(dir).reduce((sum, size) => sum + size, 0);
}

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('seg-')).sort().map((n) => path.join(dir, n));
}

/** Changes bytes of a file behind the store's back. */
function overwriteAt(file: string, position: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, position);
  fs.closeSync(fd);
}

const KEY = '1:00000000DEADBEEF:5:b:3.-7';

/** A closed store holding 'kept' then KEY in one segment: its folder and that segment. */
async function keptThenKey(t: ExecutionContext): Promise<{ dir: string; segment: string }> {
  const dir = freshDir(t);
  const first = await ChunkStore.open({ dir, maxBytes: 1 << 20 });
  await first.put('kept', chunk(2000, 1));
  await first.put(KEY, chunk(3000, 2));
  await first.close();
  return { dir, segment: segmentFiles(dir)[0]! };
}

test('a put chunk is read back byte for byte, all 256 byte values included', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });
  const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  await store.put(KEY, allBytes);

  t.true(store.has(KEY));
  t.deepEqual(await store.get(KEY), allBytes);
  const [segment] = segmentFiles(dir);
  t.true(fs.readFileSync(segment!).subarray(-256).equals(allBytes), 'the segment holds the raw chunk after its header and key');
  t.like(store.stats(), { bytes: recordSize(KEY, 256), entries: 1, hits: 1, misses: 0 });
});

test('the disk tier alone round-trips small and large chunks (memory tier disabled)', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 4 << 20, memoryBytes: 0 });
  for (const size of [0, 1, 10_000, 65_536, 1 << 20]) {
    await store.put(`${KEY}.${size}`, chunk(size, size));
    t.deepEqual(await store.get(`${KEY}.${size}`), chunk(size, size), `${size} bytes`);
  }
  t.is(store.stats().memoryBytes, 0);
});

test('a key never put is a miss: null, counted, and not an error', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 1 << 20 });

  t.is(await store.get('never-put'), null);
  t.false(store.has('never-put'));
  t.like(store.stats(), { hits: 0, misses: 1, entries: 0, bytes: 0 });
});

test('a put keeps the chunk it is given without copying it: the memory tier serves that very buffer, the disk the same bytes', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 4 << 20 });
  const bytes = chunk(1 << 20, 2);

  await store.put(KEY, bytes);

  t.is(await store.get(KEY), bytes, 'no copy was made');
  await store.close();
  const reopened = await openStore(t, { dir, maxBytes: 4 << 20 });
  t.deepEqual(await reopened.get(KEY), chunk(1 << 20, 2));
});

test('a small view of a large buffer is copied on put, so the store does not keep the rest of it alive', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 4 << 20 });
  const large = chunk(1 << 20, 3);
  const view = large.subarray(1000, 5096);

  await store.put(KEY, view);

  const got = (await store.get(KEY))!;
  t.deepEqual(got, chunk(1 << 20, 3).subarray(1000, 5096));
  t.true(got.buffer.byteLength < large.buffer.byteLength, 'the stored chunk has a memory of its own');
});

test('many chunks live in a few segment files, not a file each', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });
  for (let i = 0; i < 1000; i++) await store.put(`${KEY}.${i}`, chunk(4096, i));

  t.true(filesOnDisk(dir).length <= 17, `${filesOnDisk(dir).length} files`);
  t.true(store.stats().bytes <= 1 << 20);
  t.is(store.stats().bytes, totalOnDisk(dir));
  t.deepEqual(await store.get(`${KEY}.999`), chunk(4096, 999));
});

test('delete removes the chunk from both tiers, and it stays deleted after a restart', async (t) => {
  const dir = freshDir(t);
  const store = await ChunkStore.open({ dir, maxBytes: 1 << 20 });
  await store.put(KEY, chunk(5000, 3));
  await store.put('other', chunk(100, 4));
  await store.get(KEY); // now certainly in the memory tier
  t.true(store.stats().memoryBytes > 0);

  t.true(await store.delete(KEY));

  t.false(store.has(KEY));
  t.is(await store.get(KEY), null);
  t.like(store.stats(), { entries: 1, memoryBytes: 100, evictions: 0 });
  t.false(await store.delete(KEY), 'deleting again reports nothing was there');
  await store.close();

  const reopened = await openStore(t, { dir, maxBytes: 1 << 20 });
  t.false(reopened.has(KEY), 'the tombstone outlives the restart');
  t.deepEqual(await reopened.get('other'), chunk(100, 4));
});

test('a chunk deleted while its first put is still being written stays deleted, also after a restart', async (t) => {
  const dir = freshDir(t);
  const store = await ChunkStore.open({ dir, maxBytes: 4 << 20 });
  const put = store.put(KEY, chunk(200_000, 1)); // large: written through the thread pool

  t.false(await store.delete(KEY), 'nothing was stored yet');
  await put;

  t.false(store.has(KEY));
  await store.close();
  const reopened = await openStore(t, { dir, maxBytes: 4 << 20 });
  t.false(reopened.has(KEY), 'the record written after the delete is covered by its tombstone');
});

test('overwriting a key replaces the bytes, also after a restart, and is not an eviction', async (t) => {
  const dir = freshDir(t);
  const store = await ChunkStore.open({ dir, maxBytes: 1 << 20 });

  await store.put(KEY, chunk(3000, 1));
  await store.put(KEY, chunk(1000, 2));

  t.deepEqual(await store.get(KEY), chunk(1000, 2));
  // The old record's bytes count until its segment is evicted.
  t.like(store.stats(), { bytes: recordSize(KEY, 3000) + recordSize(KEY, 1000), entries: 1, evictions: 0 });
  await store.close();
  const reopened = await openStore(t, { dir, maxBytes: 1 << 20, memoryBytes: 0 });
  t.deepEqual(await reopened.get(KEY), chunk(1000, 2));
});

for (const memoryBytes of [0, 64 * 1024]) {
  const tier = memoryBytes === 0 ? 'disk tier only' : 'with memory tier';
  test(`over the byte budget, the least recently read chunk is evicted first (${tier})`, async (t) => {
    const dir = freshDir(t);
    const store = await openStore(t, { dir, maxBytes: 10_000, memoryBytes });
    await store.put('a', chunk(3000, 1));
    await store.put('b', chunk(4000, 2));
    await store.put('c', chunk(2000, 3));

    await store.get('a'); // 'a' was written first but read last: 'b' is now the oldest
    await store.put('d', chunk(2500, 4)); // over 10 000 bytes: one eviction of b is enough

    t.false(store.has('b'));
    const live = recordSize('a', 3000) + recordSize('c', 2000) + recordSize('d', 2500);
    t.like(store.stats(), { bytes: live, entries: 3, evictions: 1 });
    t.is(totalOnDisk(dir), live, 'evicted segments are removed from the disk');
    t.is(await store.get('b'), null);
    for (const [key, seed, size] of [['a', 1, 3000], ['c', 3, 2000], ['d', 4, 2500]] as const) {
      t.deepEqual(await store.get(key), chunk(size, seed), `${key} survives`);
    }
  });
}

test('eviction counts bytes, not entries: one big chunk pushes out several small ones', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 10_000 });
  for (let i = 0; i < 5; i++) await store.put(`small-${i}`, chunk(1000, i));
  // Exactly room for two small chunks next to the big one.
  const bigSize = 10_000 - 2 * recordSize('small-0', 1000) - recordSize('big', 0);

  await store.put('big', chunk(bigSize, 9));

  t.deepEqual([0, 1, 2, 3, 4].map((i) => store.has(`small-${i}`)), [false, false, false, true, true]);
  t.like(store.stats(), { bytes: 10_000, entries: 3, evictions: 3 });
});

test('a chunk bigger than the whole budget is not stored and evicts nothing', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 10_000 });
  await store.put('small', chunk(100, 1));

  await store.put(KEY, chunk(10_001, 2));

  t.false(store.has(KEY));
  t.is(await store.get(KEY), null);
  t.true(store.has('small'));
  t.like(store.stats(), { bytes: recordSize('small', 100), entries: 1, evictions: 0 });
  t.deepEqual(filesOnDisk(dir), [recordSize('small', 100)]);
});

test('a memory-tier hit is served without reading the disk', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });
  await store.put(KEY, chunk(4096, 5));
  for (const file of segmentFiles(dir)) fs.truncateSync(file, 0); // behind the store's back

  t.deepEqual(await store.get(KEY), chunk(4096, 5));
});

test('memory: false (a read larger than the memory tier) stores on disk only, replaces a copy in memory, and a disk hit so asked is not promoted', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });
  await store.put(KEY, chunk(4096, 5));
  await store.put(KEY, chunk(4096, 6), { memory: false });
  t.is(store.stats().memoryBytes, 0, 'the older bytes left memory with the put that replaced them');
  t.deepEqual(await store.get(KEY, { memory: false }), chunk(4096, 6), 'served from the disk');
  t.is(store.stats().memoryBytes, 0, 'and not promoted into memory');
  t.deepEqual(await store.get(KEY), chunk(4096, 6));
  t.true(store.stats().memoryBytes > 0, 'an ordinary hit is promoted');
});

test('a chunk whose bytes changed on disk is a miss, not an error, and is forgotten', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20, memoryBytes: 0 });
  await store.put(KEY, chunk(4096, 5));
  overwriteAt(segmentFiles(dir)[0]!, recordSize(KEY, 100), Buffer.from([0xff ^ chunk(4096, 5)[100]!]));

  t.is(await store.get(KEY), null);
  t.like(store.stats(), { misses: 1, hits: 0, entries: 0 });
});

test('after close and reopen the same chunks are served and the byte total is right', async (t) => {
  const dir = freshDir(t);
  const first = await ChunkStore.open({ dir, maxBytes: 1 << 20 });
  const sizes = [4096, 65_536, 1, 123_457];
  for (const [i, size] of sizes.entries()) await first.put(`${KEY}.${i}`, chunk(size, i));
  await first.close();

  const second = await openStore(t, { dir, maxBytes: 1 << 20 });

  const bytes = sizes.reduce((sum, size, i) => sum + recordSize(`${KEY}.${i}`, size), 0);
  t.like(second.stats(), { bytes, entries: 4, memoryBytes: 0, evictions: 0 });
  for (const [i, size] of sizes.entries()) {
    t.true(second.has(`${KEY}.${i}`));
    t.deepEqual(await second.get(`${KEY}.${i}`), chunk(size, i));
  }
  t.is(second.stats().memoryBytes, 4096 + 65_536 + 1 + 123_457, 'reads filled the memory tier');
  t.deepEqual(await second.get(`${KEY}.0`), chunk(4096, 0), 'and a second read is a memory hit');
});

test('reopening with a smaller budget evicts the oldest segments down to it', async (t) => {
  const dir = freshDir(t);
  // A budget of 16 records: each segment holds one.
  const first = await ChunkStore.open({ dir, maxBytes: 16 * recordSize('k0', 1000) });
  for (let i = 0; i < 5; i++) await first.put(`k${i}`, chunk(1000, i));
  await first.close();

  const second = await openStore(t, { dir, maxBytes: 2 * recordSize('k0', 1000) + 500 });

  t.like(second.stats(), { bytes: 2 * recordSize('k0', 1000), entries: 2, evictions: 3 });
  t.deepEqual([0, 1, 2, 3, 4].map((i) => second.has(`k${i}`)), [false, false, false, true, true]);
  t.deepEqual(await second.get('k4'), chunk(1000, 4));
  t.deepEqual(filesOnDisk(dir), [recordSize('k0', 1000), recordSize('k0', 1000)], 'the evicted segments are removed');
});

test('a record torn by a crash mid-append is cut off on open; the records before it are served', async (t) => {
  const { dir, segment } = await keptThenKey(t);
  fs.truncateSync(segment, recordSize('kept', 2000) + 1500); // half of the second record reached the disk

  const second = await openStore(t, { dir, maxBytes: 1 << 20 });

  t.false(second.has(KEY));
  t.deepEqual(await second.get('kept'), chunk(2000, 1));
  t.like(second.stats(), { bytes: recordSize('kept', 2000), entries: 1 });
  t.is(fs.statSync(segment).size, recordSize('kept', 2000), 'the torn tail is truncated away');
  await second.put('after', chunk(10, 3));
  t.deepEqual(await second.get('after'), chunk(10, 3));
});

test('a record whose bytes changed while the store was down is not served after the restart', async (t) => {
  const { dir, segment } = await keptThenKey(t);
  overwriteAt(segment, recordSize('kept', 2000) + recordSize(KEY, 1000), Buffer.from([0x00, 0x00]));

  const second = await openStore(t, { dir, maxBytes: 1 << 20, memoryBytes: 0 });

  t.false(second.has(KEY));
  t.deepEqual(await second.get('kept'), chunk(2000, 1));
});

test('the chunk files of the earlier one-file-per-chunk layout are removed on open', async (t) => {
  const dir = freshDir(t);
  fs.mkdirSync(path.join(dir, 'ab'));
  fs.writeFileSync(path.join(dir, 'ab', 'ab'.padEnd(64, '0')), chunk(700, 2));

  const store = await openStore(t, { dir, maxBytes: 1 << 20 });

  t.false(fs.existsSync(path.join(dir, 'ab')));
  t.like(store.stats(), { bytes: 0, entries: 0 });
});

test('a large chunk put again while its old copy is evicted is served whole', async (t) => {
  const dir = freshDir(t);
  const size = 100_000; // above the synchronous-write size: written through the thread pool
  const store = await openStore(t, { dir, maxBytes: 4 * recordSize(KEY, size), memoryBytes: 0 });

  for (let round = 0; round < 20; round++) {
    await store.put(KEY, chunk(size, round)); // X, then three fillers: X is the oldest of a full store
    for (let i = 1; i <= 3; i++) await store.put(`filler-${round}-${i}`, chunk(size, i));
    await Promise.all([store.put(`filler-${round}-4`, chunk(size, 4)), store.put(KEY, chunk(size, round + 100))]);

    t.deepEqual(await store.get(KEY), chunk(size, round + 100), `round ${round}`);
    t.is(store.stats().bytes, totalOnDisk(dir), `round ${round}`);
  }
});

test('concurrent puts of one key, racing deletes and evictions leave a store that a restart reproduces', async (t) => {
  const dir = freshDir(t);
  const maxBytes = 600_000;
  const store = await ChunkStore.open({ dir, maxBytes, memoryBytes: 20_000 });
  const versions = [chunk(7000, 1), chunk(90_000, 2), chunk(3000, 3)];
  const keys = new Set<string>([KEY]);

  for (let round = 0; round < 20; round++) {
    const ops: Promise<unknown>[] = [];
    for (const version of versions) ops.push(store.put(KEY, version));
    ops.push(store.delete(KEY), store.get(KEY));
    for (const version of versions) ops.push(store.put(KEY, version));
    // Other keys push the total over budget, so evictions race the puts and deletes too.
    for (let i = 0; i < 6; i++) {
      keys.add(`other-${round}-${i}`);
      ops.push(store.put(`other-${round}-${i}`, chunk(4000 + i * 20_000, i)));
    }
    if (round % 3 === 0) ops.push(store.delete(KEY));
    await Promise.all(ops);

    t.is(store.stats().bytes, totalOnDisk(dir), `round ${round}: bytes match the segment files`);
    t.true(store.stats().bytes <= maxBytes);
    const got = await store.get(KEY);
    t.true(got === null || versions.some((v) => v.equals(got)), `round ${round}: a whole version or nothing`);
  }
  const before = new Map<string, Buffer | null>();
  for (const key of keys) before.set(key, await store.get(key));
  // Reads copy chunks forward, which may evict others read earlier: compare only what is still held.
  for (const [key, bytes] of before) if (bytes !== null && !store.has(key)) before.delete(key);
  await store.close();

  const reopened = await openStore(t, { dir, maxBytes, memoryBytes: 0 });
  t.true([...before.values()].filter((b) => b !== null).length > 3, 'the check covers several chunks');
  for (const [key, bytes] of before) t.deepEqual(await reopened.get(key), bytes, `${key} after the restart`);
});
