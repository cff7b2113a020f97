// Specification of the cache actor's chunk store, exercised against real files in a fresh temp folder.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore, chunkFilePath, type ChunkStoreOptions } from '../actors/chunk-store.js';

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

/** Sizes of every file below `dir`, temp files included, so a leak would show. */
function filesOnDisk(dir: string): number[] {
  const sizes: number[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) sizes.push(fs.statSync(path.join(entry.parentPath, entry.name)).size);
  }
  return sizes;
}

const KEY = '1:00000000DEADBEEF:5:b:3.-7';

test('a put chunk is read back byte for byte, all 256 byte values included', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });
  const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  await store.put(KEY, allBytes);

  t.true(store.has(KEY));
  t.deepEqual(await store.get(KEY), allBytes);
  t.deepEqual(fs.readFileSync(chunkFilePath(dir, KEY)), allBytes, 'the file holds the raw chunk');
  t.like(store.stats(), { bytes: 256, entries: 1, hits: 1, misses: 0 });
});

test('the disk tier alone round-trips a chunk (memory tier disabled)', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 1 << 20, memoryBytes: 0 });
  const bytes = chunk(10_000, 1);

  await store.put(KEY, bytes);

  t.deepEqual(await store.get(KEY), bytes);
  t.is(store.stats().memoryBytes, 0);
});

test('a key never put is a miss: null, counted, and not an error', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 1 << 20 });

  t.is(await store.get('never-put'), null);
  t.false(store.has('never-put'));
  t.like(store.stats(), { hits: 0, misses: 1, entries: 0, bytes: 0 });
});

test('the store keeps its own copy: changing the caller\'s buffer after put changes nothing', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 1 << 20 });
  const bytes = chunk(4096, 2);

  await store.put(KEY, bytes);
  bytes.fill(0);

  t.deepEqual(await store.get(KEY), chunk(4096, 2));
});

test('delete removes the chunk from memory and from disk', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });
  await store.put(KEY, chunk(5000, 3));
  await store.get(KEY); // now certainly in the memory tier
  t.true(store.stats().memoryBytes > 0);

  t.true(await store.delete(KEY));

  t.false(fs.existsSync(chunkFilePath(dir, KEY)), 'file gone');
  t.false(store.has(KEY));
  t.is(await store.get(KEY), null);
  t.like(store.stats(), { bytes: 0, entries: 0, memoryBytes: 0, evictions: 0 });
  t.false(await store.delete(KEY), 'deleting again reports nothing was there');
});

test('overwriting a key replaces the bytes and is not counted as an eviction', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });

  await store.put(KEY, chunk(3000, 1));
  await store.put(KEY, chunk(1000, 2));

  t.deepEqual(await store.get(KEY), chunk(1000, 2));
  t.like(store.stats(), { bytes: 1000, entries: 1, evictions: 0 });
  t.deepEqual(filesOnDisk(dir), [1000]);
});

for (const memoryBytes of [0, 64 * 1024]) {
  const tier = memoryBytes === 0 ? 'disk tier only' : 'with memory tier';
  test(`over the byte budget, the least recently read chunk is evicted first (${tier})`, async (t) => {
    const dir = freshDir(t);
    const store = await openStore(t, { dir, maxBytes: 10_000, memoryBytes });
    await store.put('a', chunk(3000, 1));
    await store.put('b', chunk(4000, 2));
    await store.put('c', chunk(2000, 3));
    t.is(store.stats().bytes, 9000);

    await store.get('a'); // 'a' was written first but read last: 'b' is now the oldest
    await store.put('d', chunk(2500, 4)); // 11 500 bytes > 10 000: one eviction of 4000 is enough

    t.false(store.has('b'));
    t.false(fs.existsSync(chunkFilePath(dir, 'b')), 'the evicted file is gone once put resolves');
    t.is(await store.get('b'), null);
    for (const [key, seed, size] of [['a', 1, 3000], ['c', 3, 2000], ['d', 4, 2500]] as const) {
      t.deepEqual(await store.get(key), chunk(size, seed), `${key} survives`);
    }
    t.like(store.stats(), { bytes: 7500, entries: 3, evictions: 1 });
    t.is(filesOnDisk(dir).reduce((sum, size) => sum + size, 0), 7500);
  });
}

test('eviction counts bytes, not entries: one big chunk pushes out several small ones', async (t) => {
  const store = await openStore(t, { dir: freshDir(t), maxBytes: 10_000 });
  for (let i = 0; i < 5; i++) await store.put(`small-${i}`, chunk(1000, i));

  await store.put('big', chunk(8000, 9)); // 13 000 bytes: the three oldest small chunks must go

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
  t.like(store.stats(), { bytes: 100, entries: 1, evictions: 0 });
  t.deepEqual(filesOnDisk(dir), [100]);
});

test('a memory-tier hit is served without reading the disk', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20 });
  await store.put(KEY, chunk(4096, 5));
  fs.rmSync(chunkFilePath(dir, KEY)); // behind the store's back

  t.deepEqual(await store.get(KEY), chunk(4096, 5));
});

test('a chunk whose file vanished between lookup and read is a miss, not an error', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 1 << 20, memoryBytes: 0 });
  await store.put(KEY, chunk(4096, 5));
  fs.rmSync(chunkFilePath(dir, KEY));

  t.is(await store.get(KEY), null);
  t.is(store.stats().misses, 1);
  await store.close(); // lets the store forget the vanished entry
  t.is(store.stats().entries, 0);
});

test('after close and reopen the same chunks are served and the byte total is right', async (t) => {
  const dir = freshDir(t);
  const first = await ChunkStore.open({ dir, maxBytes: 1 << 20 });
  const sizes = [4096, 65_536, 1, 123_457];
  for (const [i, size] of sizes.entries()) await first.put(`${KEY}.${i}`, chunk(size, i));
  await first.close();

  const second = await openStore(t, { dir, maxBytes: 1 << 20 });

  t.like(second.stats(), { bytes: 4096 + 65_536 + 1 + 123_457, entries: 4, memoryBytes: 0, evictions: 0 });
  for (const [i, size] of sizes.entries()) {
    t.true(second.has(`${KEY}.${i}`));
    t.deepEqual(await second.get(`${KEY}.${i}`), chunk(size, i));
  }
  t.is(second.stats().memoryBytes, 4096 + 65_536 + 1 + 123_457, 'reads filled the memory tier');
  t.deepEqual(await second.get(`${KEY}.0`), chunk(4096, 0), 'and a second read is a memory hit');
});

test('reopening with a smaller budget evicts the oldest chunks down to it', async (t) => {
  const dir = freshDir(t);
  const first = await ChunkStore.open({ dir, maxBytes: 1 << 20 });
  for (let i = 0; i < 5; i++) await first.put(`k${i}`, chunk(1000, i));
  await first.close();
  // Recency after a restart is the file mtime; make the write order unambiguous.
  for (let i = 0; i < 5; i++) fs.utimesSync(chunkFilePath(dir, `k${i}`), 1_000_000 + i, 1_000_000 + i);

  const second = await openStore(t, { dir, maxBytes: 2500 });

  t.like(second.stats(), { bytes: 2000, entries: 2, evictions: 3 });
  t.deepEqual([0, 1, 2, 3, 4].map((i) => second.has(`k${i}`)), [false, false, false, true, true]);
  t.deepEqual(await second.get('k4'), chunk(1000, 4));
  t.deepEqual(filesOnDisk(dir), [1000, 1000], 'the evicted files are removed');
});

test('a temp file left by a crash mid-write is ignored and removed on open', async (t) => {
  const dir = freshDir(t);
  const first = await ChunkStore.open({ dir, maxBytes: 1 << 20 });
  await first.put('kept', chunk(2000, 1));
  await first.close();
  const leftover = `${chunkFilePath(dir, KEY)}.tmp-99999-1`;
  fs.writeFileSync(leftover, chunk(700, 2)); // half a chunk, never renamed into place

  const second = await openStore(t, { dir, maxBytes: 1 << 20 });

  t.false(fs.existsSync(leftover));
  t.false(second.has(KEY));
  t.is(await second.get(KEY), null);
  t.deepEqual(await second.get('kept'), chunk(2000, 1));
  t.like(second.stats(), { bytes: 2000, entries: 1 });
});

test('a chunk evicted while it is being put again keeps its new file', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 10_000, memoryBytes: 0 });

  for (let round = 0; round < 20; round++) {
    await store.put(KEY, chunk(2500, round)); // X, then three fillers: X is the oldest of a full store
    for (let i = 1; i <= 3; i++) await store.put(`filler-${round}-${i}`, chunk(2500, i));
    // The fourth filler usually lands first and evicts the old X while the new X is being written;
    // the eviction's unlink must not remove the file the new X just renamed into place.
    await Promise.all([store.put(`filler-${round}-4`, chunk(2500, 4)), store.put(KEY, chunk(2500, round + 100))]);

    t.deepEqual(await store.get(KEY), chunk(2500, round + 100), `round ${round}`);
    t.is(store.stats().bytes, filesOnDisk(dir).reduce((sum, size) => sum + size, 0), `round ${round}`);
  }
});

test('concurrent puts of one key, a racing delete and evictions leave a consistent store', async (t) => {
  const dir = freshDir(t);
  const store = await openStore(t, { dir, maxBytes: 50_000, memoryBytes: 20_000 });
  const versions = [chunk(7000, 1), chunk(9000, 2), chunk(3000, 3)];

  for (let round = 0; round < 20; round++) {
    const ops: Promise<unknown>[] = [];
    for (const version of versions) ops.push(store.put(KEY, version));
    ops.push(store.delete(KEY), store.get(KEY));
    for (const version of versions) ops.push(store.put(KEY, version));
    // Other keys push the total over budget, so evictions race the puts and deletes too.
    for (let i = 0; i < 6; i++) ops.push(store.put(`other-${round}-${i}`, chunk(4000 + i * 500, i)));
    if (round % 3 === 0) ops.push(store.delete(KEY));
    await Promise.all(ops);

    const onDisk = filesOnDisk(dir);
    const { bytes, entries } = store.stats();
    t.is(bytes, onDisk.reduce((sum, size) => sum + size, 0), `round ${round}: bytes match the files`);
    t.is(entries, onDisk.length, `round ${round}: one file per entry, no temp files left`);
    t.true(bytes <= 50_000);
    const got = await store.get(KEY);
    t.true(got === null || versions.some((v) => v.equals(got)), `round ${round}: a whole version or nothing`);
  }
});
