// A UG reading from two replicas when one of them misbehaves: a chunk corrupted on one replica's
// disk is detected and read from the other; a replica stopped in the middle of a read leaves the
// read to the other; with a replica down, writes are refused and change nothing.
import test from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { formatBlockUrl } from '../http/data-url.js';
import { waitFor } from './support/gateway.js';
import { patternBytes } from './support/ug.js';
import { ugVolumePerFile } from './support/ug-per-file.js';

const BS = 65536;
const vol = ugVolumePerFile({ blockSize: BS });

interface EntryJson { file_id: string; file_version: string; size: number }

/** Flips one byte of block `block` of a file on every replica's disk. */
function corruptEverywhere(e: EntryJson, block: number, at: number): void {
  for (const rg of vol.v.rgs) {
    const dir = join(rg.storageDir, String(vol.v.ug.volumeId), e.file_id, String(block));
    const p = join(dir, readdirSync(dir)[0]!);
    const bytes = readFileSync(p);
    bytes[at] ^= 1;
    writeFileSync(p, bytes);
  }
}

// Serial tests run before the concurrent one, which stops a replica.
test.serial('a chunk corrupted on one replica\'s disk is detected and the read is served from the other', async (t) => {
  const { client, rgs, ug } = vol.v;
  const data = patternBytes(3 * BS, 21);
  const e = (await client.put('/corrupt/c.bin', data)).json<{ entry: EntryJson }>().entry;
  // Block 1 on the first replica (the one the UG asks first): same length, one byte flipped.
  const blockDir = join(rgs[0]!.storageDir, String(ug.volumeId), e.file_id, '1');
  const version = readdirSync(blockDir)[0]!;
  const path = join(blockDir, version);
  const stored = readFileSync(path);
  stored[100] ^= 0xff;
  writeFileSync(path, stored);
  const direct = await fetch(formatBlockUrl(rgs[0]!.url, { volume_id: ug.volumeId, fs_path: '/corrupt/c.bin', file_id: BigInt(`0x${e.file_id}`), file_version: BigInt(e.file_version), block_id: 1n, block_version: BigInt(version) }));
  t.true(Buffer.from(await direct.arrayBuffer()).equals(stored), 'the first replica serves the corrupted bytes');
  const got = await client.get('/corrupt/c.bin');
  t.is(got.status, 200, got.body.toString());
  t.true(got.body.equals(data), 'the UG rejected the bad copy and read the good one');

  // Corrupted on both replicas: no valid copy is left, and the reader says so.
  const e2 = (await client.put('/corrupt/both.bin', patternBytes(BS, 22))).json<{ entry: EntryJson }>().entry;
  corruptEverywhere(e2, 0, 0);
  const bad = await client.get('/corrupt/both.bin');
  t.is(bad.status, 502);
  t.regex(bad.body.toString(), /no gateway gave a valid block 0 of \/corrupt\/both\.bin.*SHA-256/);
});

test.serial('a read whose later block no replica can serve is cut short, and the UG logs it as a warning, not an error', async (t) => {
  const { client, ugProc } = vol.v;
  const data = patternBytes(3 * BS, 24);
  const e = (await client.put('/corrupt/late.bin', data)).json<{ entry: EntryJson }>().entry;
  corruptEverywhere(e, 2, 7);
  // The first block is good: the status line goes out, then the body stops short of its length.
  const got = await new Promise<{ status: number; length: number; bytes: number }>((resolve) => {
    request(`${client.url}/FILES/corrupt/late.bin`, { headers: { Authorization: `Bearer ${client.token}` } }, (res) => {
      let bytes = 0;
      const done = () => resolve({ status: res.statusCode ?? 0, length: Number(res.headers['content-length']), bytes });
      res.on('data', (d: Buffer) => { bytes += d.length; });
      res.once('end', done);
      res.once('error', done);
      res.once('aborted', done);
    }).end();
  });
  t.is(got.status, 200);
  t.is(got.length, data.length);
  t.true(got.bytes < data.length, `the body fell short (${got.bytes} of ${data.length} bytes)`);
  const lines = () => ugProc.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; status?: number; rid?: string });
  const cut = await waitFor('the UG logs the cut answer', async () => lines().find((l) => l.msg === 'answer cut short after its headers'));
  t.is(cut.level, 40, 'a warning');
  t.is(cut.status, 502);
  t.false(lines().some((l) => l.level >= 50), 'no error line');
});

test('a replica stopped in the middle of a read leaves the read to the other; writes then fail and change nothing', async (t) => {
  const { client, rgProcs } = vol.v;
  const data = patternBytes(40 * BS + 5, 23);
  t.is((await client.put('/stop/s.bin', data)).status, 201);
  const res = await fetch(`${client.url}/FILES/stop/s.bin`, { headers: { Authorization: `Bearer ${client.token}` } });
  t.is(res.status, 200);
  const reader = res.body!.getReader();
  const parts: Uint8Array[] = [];
  let have = 0;
  while (have < 3 * BS) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    have += value.length;
  }
  await rgProcs[0]!.stop(); // the first replica, asked first for every block, is gone
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  t.true(Buffer.concat(parts).equals(data), 'every byte arrived, the rest from the second replica');

  const put = await client.put('/stop/new.bin', Buffer.from('not acknowledged'));
  t.is(put.status, 502, 'a write must reach every replica');
  t.regex(put.body.toString(), /PUTCHUNKS .*rg \d+/);
  t.is((await client.stat('/stop/new.bin')).status, 404, 'nothing was published');
  t.true((await client.get('/stop/s.bin')).body.equals(data), 'an acknowledged write survives the loss of one replica');
});
