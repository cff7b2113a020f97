// UG → RG → UG through real processes: a UG and two RGs (built-in disk driver), a real Redis, the
// UG's application API over HTTP. Files go out as signed chunks to both replicas and come back
// byte for byte, whole or by range.
import test from 'ava';
import { keys } from '../queues/names.js';
import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { patternBytes } from './support/ug.js';
import { ugVolumePerFile } from './support/ug-per-file.js';

const BS = 65536;
const vol = ugVolumePerFile({ blockSize: BS });

interface EntryJson { file_id: string; file_version: string; size: number; coordinator_id: string; type: string; path: string }

function rawPut(url: string, path: string, token: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method: 'PUT', headers: { Authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end('x');
  });
}

/** Chunk files the disk driver holds for a file id on one RG. */
function storedChunks(storageDir: string, volumeId: bigint, fileIdHex: string): string[] {
  const dir = join(storageDir, String(volumeId), fileIdHex);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
}

for (const size of [0, 1, BS - 1, BS, 10 * 1024 * 1024 + 3]) {
  test(`a file of ${size} bytes written through the UG reads back byte for byte`, async (t) => {
    const { client, rgs, ug } = vol.v;
    const data = patternBytes(size, size + 1);
    const put = await client.put(`/sizes/f${size}.bin`, data);
    t.is(put.status, 201, put.body.toString());
    const entry = put.json<{ entry: EntryJson }>().entry;
    t.is(entry.size, size);
    t.is(entry.coordinator_id, String(ug.gatewayId), 'the UG coordinates what it writes');
    const got = await client.get(`/sizes/f${size}.bin`);
    t.is(got.status, 200, got.body.toString());
    t.true(got.body.equals(data), 'same bytes');
    const blocks = Math.ceil(size / BS);
    for (const rg of rgs) {
      t.is(storedChunks(rg.storageDir, rg.volumeId, entry.file_id).length, blocks + 1, `rg ${rg.gatewayId} holds every block and the manifest`);
    }
  });
}

test('Range reads answer 206 with exactly the bytes asked for, across block boundaries', async (t) => {
  const { client } = vol.v;
  const data = patternBytes(3 * BS + 100, 7);
  t.is((await client.put('/range/r.bin', data)).status, 201);
  const cases: [string, number, number][] = [
    ['bytes=0-0', 0, 1], [`bytes=${BS - 2}-${BS + 1}`, BS - 2, BS + 2], [`bytes=${BS}-`, BS, data.length],
    ['bytes=-50', data.length - 50, data.length], [`bytes=10-${10 * BS}`, 10, data.length],
  ];
  for (const [range, from, to] of cases) {
    const r = await client.get('/range/r.bin', { Range: range });
    t.is(r.status, 206, range);
    t.is(r.headers.get('content-range'), `bytes ${from}-${to - 1}/${data.length}`, range);
    t.true(r.body.equals(data.subarray(from, to)), range);
  }
  const bad = await client.get('/range/r.bin', { Range: `bytes=${data.length}-` });
  t.is(bad.status, 416);
  t.is(bad.headers.get('content-range'), `bytes */${data.length}`);
});

test('overwriting a file publishes a new version and deletes the old chunks from the replicas', async (t) => {
  const { client, rgs } = vol.v;
  const first = (await client.put('/over/o.bin', patternBytes(2 * BS, 3))).json<{ entry: EntryJson }>().entry;
  const second = await client.put('/over/o.bin', patternBytes(BS + 5, 4));
  t.is(second.status, 201, second.body.toString());
  const e2 = second.json<{ entry: EntryJson; warnings: string[] }>();
  t.deepEqual(e2.warnings, []);
  t.is(e2.entry.file_id, first.file_id, 'same file, new version');
  t.not(e2.entry.file_version, first.file_version);
  t.true((await client.get('/over/o.bin')).body.equals(patternBytes(BS + 5, 4)));
  for (const rg of rgs) t.is(storedChunks(rg.storageDir, rg.volumeId, first.file_id).length, 2 + 1, 'only the new version\'s 2 blocks and manifest remain');
});

test('rename moves the file in the namespace and reaches the replicas; delete removes its chunks', async (t) => {
  const { client, rgs } = vol.v;
  const data = patternBytes(BS + 9, 11);
  const e = (await client.put('/mv/a.bin', data)).json<{ entry: EntryJson }>().entry;
  const mv = await client.mv('/mv/a.bin', '/mv/sub/b.bin');
  t.is(mv.status, 200, mv.body.toString());
  t.is((await client.get('/mv/a.bin')).status, 404);
  t.true((await client.get('/mv/sub/b.bin')).body.equals(data));
  t.is((await client.stat('/mv/sub')).json<{ entry: EntryJson }>().entry.type, 'directory', 'missing parents are made');
  for (const rg of rgs) {
    const manifests = storedChunks(rg.storageDir, rg.volumeId, e.file_id).filter((p) => p.includes(`${join('manifest', '')}`));
    t.is(manifests.length, 1, 'the replica holds the new manifest only (the RENAME_HINT wrote it, the old one was deleted)');
  }
  const rm = await client.rm('/mv/sub/b.bin');
  t.is(rm.status, 200, rm.body.toString());
  t.is((await client.get('/mv/sub/b.bin')).status, 404);
  for (const rg of rgs) t.deepEqual(storedChunks(rg.storageDir, rg.volumeId, e.file_id), [], 'DELETECHUNKS reached the disk driver');
  t.is((await client.rm('/mv/sub')).status, 200, 'an empty directory can be deleted');
});

test('concurrent writers of different files do not interfere', async (t) => {
  const { client } = vol.v;
  const files = Array.from({ length: 8 }, (_, i) => ({ path: `/many/f${i}.bin`, data: patternBytes(BS * (i % 3) + 17 * i, 100 + i) }));
  const puts = await Promise.all(files.map((f) => client.put(f.path, f.data)));
  for (const p of puts) t.is(p.status, 201, p.body.toString());
  const gets = await Promise.all(files.map((f) => client.get(f.path)));
  gets.forEach((g, i) => t.true(g.body.equals(files[i]!.data), files[i]!.path));
  const list = (await client.list('/many')).json<{ entries: EntryJson[] }>().entries.map((e) => e.path);
  t.deepEqual(list, files.map((f) => f.path).sort());
});

// Serial: ava runs serial tests before the concurrent ones, so nothing else changes the namespace meanwhile.
test.serial('bad input gets a clear 4xx and changes nothing', async (t) => {
  const { client, ug } = vol.v;
  t.is((await client.put('/bad/f.bin', Buffer.from('x'))).status, 201);
  const before = await vol.redis.hgetall(keys.nsEntries(ug.volumeId));
  // Sent raw: fetch would resolve the ".." before sending.
  for (const raw of ['/FILES/a/../b', '/FILES/a/%2e%2e/b', '/FILES/..']) {
    const dotdot = await rawPut(client.url, raw, client.token);
    t.is(dotdot.status, 400, raw);
    t.regex(dotdot.body, /bad segment/, raw);
  }
  const nul = await client.put('/a%00b', Buffer.from('x'));
  t.is(nul.status, 400);
  t.regex(nul.body.toString(), /NUL/);
  t.is((await client.get('/no/such/file')).status, 404);
  t.is((await client.rm('/no/such/file')).status, 404);
  t.is((await client.mv('/no/such/file', '/x')).status, 404);
  const data = await fetch(`${client.url}/DATA/${ug.volumeId}/bad/f.bin.1F.1/0.0`);
  t.is(data.status, 404, 'a UG serves no chunks');
  t.regex(await data.text(), /replica gateways/);
  const noToken = await fetch(`${client.url}/FILES/bad/f.bin`);
  t.is(noToken.status, 401);
  const wrong = await fetch(`${client.url}/FILES/bad/f.bin`, { headers: { Authorization: 'Bearer nope' } });
  t.is(wrong.status, 401);
  t.is((await client.put('/bad', Buffer.from('x'))).status, 409, 'a directory cannot be overwritten by a file');
  const dirRead = await client.get('/bad');
  t.is(dirRead.status, 409, 'a directory is not read as a file');
  t.regex(dirRead.body.toString(), /is a directory: read it with \?list/);
  t.is((await client.put('/bad/f.bin/under', Buffer.from('x'))).status, 409, 'a file is not a directory');
  t.deepEqual(await vol.redis.hgetall(keys.nsEntries(ug.volumeId)), before, 'the namespace is unchanged');
});

test('a browser form upload (multipart, through @koa/multer) writes each file part into the directory', async (t) => {
  const { client } = vol.v;
  const a = patternBytes(BS + 3, 51);
  const b = patternBytes(10, 52);
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(a)]), 'a.bin');
  form.append('file', new Blob([new Uint8Array(b)]), 'b.txt');
  form.append('note', 'a text field is ignored');
  const up = await client.request('POST', '/uploads/form', { body: form });
  t.is(up.status, 201, up.body.toString());
  t.deepEqual(up.json<{ entries: EntryJson[] }>().entries.map((e) => [e.path, e.size]), [['/uploads/form/a.bin', a.length], ['/uploads/form/b.txt', 10]]);
  t.true((await client.get('/uploads/form/a.bin')).body.equals(a));
  t.true((await client.get('/uploads/form/b.txt')).body.equals(b));
  const none = new FormData();
  none.append('note', 'no file');
  const empty = await client.request('POST', '/uploads/none', { body: none });
  t.is(empty.status, 400);
  t.regex(empty.body.toString(), /no file part/);
  t.is((await client.stat('/uploads/none')).status, 404, 'nothing was made');
});
