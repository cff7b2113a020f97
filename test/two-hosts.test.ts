// One gateway spread over two process trees with separate working folders that share only a
// Redis URL: "http,cache" on one, the driver actors on the other (their bundle comes from Redis).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ChunkType, RequestCodec } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, postRaw, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { signMessage } from '../proto/signature.js';
import { testRedis } from './support/redis.js';
import { parsePrometheusText, sampleValue, type Family } from './support/prom-text.js';
import {
  cleanup, DISK_DRIVER_JS, fileRef, liveActors, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, writeDriver,
  type GatewayFolder, type RunningGateway,
} from './support/gateway.js';

let front: GatewayFolder;
let back: GatewayFolder;
let frontGw: RunningGateway;
let backGw: RunningGateway;
let redis: Redis;

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
}

function hostEnv(dir: string): { env: Record<string, string> } {
  return { env: { SGW_SHM_DIR: join(dir, 'shm') } };
}

test.before(async () => {
  redis = new Redis((await testRedis()).url);
  front = await makeGatewayFolder();
  back = await makeGatewayFolder({ sameGatewayAs: front, noDriverFolder: true });
  // The driver's config travels in the bundle; its storage is the back host's folder.
  writeDriver(front.dir, `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`, { STORAGE_DIR: back.storageDir });
  // Each "host" has its own shared-memory folder, as two machines would.
  frontGw = startGatewayProcess(front.configFile, 'http,cache', front.dir, hostEnv(front.dir));
  backGw = startGatewayProcess(back.configFile, 'driver', back.dir, hostEnv(back.dir));
  await waitForGateway(front, redis);
});

test.after.always(async () => {
  await Promise.all([frontGw?.stop(), backGw?.stop()]);
  redis?.disconnect();
  cleanup([front.dir, back.dir]);
});

test.serial('http+cache on one tree and the driver actors on another serve a put and a get', async (t) => {
  const file = fileRef(front, { file_id: 0x77n });
  const bytes = Buffer.from('stored by the driver host, cached by the front host');
  const { blocks, data } = layOutChunks([{ block: { block_id: 0n, block_version: 9n, chunk_type: ChunkType.BLOCK }, bytes }]);
  const put = await sendControlPlane(front.url, putChunksFields(file, blocks), front.ugKey, data);
  t.is(put.status, 200, put.body.toString());
  t.is(put.reply!.error_code, 0);
  const res = await fetch(formatBlockUrl(front.url, { volume_id: 3n, fs_path: file.fs_path, file_id: 0x77n, file_version: file.file_version, block_id: 0n, block_version: 9n }));
  t.is(res.status, 200);
  t.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);

  t.is(filesUnder(back.storageDir).length, 1, 'the chunk is on the driver host');
  t.is(filesUnder(front.storageDir).length, 0, 'nothing was written to the front host storage');
  t.true(filesUnder(join(front.dir, 'cache')).length >= 1, 'the front host cached the chunk');
  t.true(filesUnder(join(back.dir, '.sgw-work', 'bundles')).some((p) => p.endsWith('.cjs')), 'the driver host loaded the bundle from Redis');
  t.false(existsSync(join(back.dir, 'driver')), 'the driver host has no driver folder');
});

test.serial('a chunk too large to ride in its job reaches the driver host through Redis', async (t) => {
  const file = fileRef(front, { file_id: 0x79n });
  const bytes = randomBytes(300_000);
  const { blocks, data } = layOutChunks([{ block: { block_id: 1n, block_version: 2n, chunk_type: ChunkType.BLOCK }, bytes }]);
  const put = await sendControlPlane(front.url, putChunksFields(file, blocks), front.ugKey, data);
  t.is(put.status, 200, put.body.toString());
  t.is(put.reply!.error_code, 0);
  const stored = filesUnder(back.storageDir).map((p) => readFileSync(p)).filter((b) => b.length === bytes.length);
  t.is(stored.length, 1);
  t.true(stored[0]!.equals(bytes), 'stored byte for byte on the driver host');
  t.deepEqual(filesUnder(join(front.dir, 'shm')).filter((p) => /[0-9a-f-]{36}$/.test(p) && !p.endsWith('host-id')), [], 'no one-call file is left behind');
});

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`${front.url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheusText(await res.text());
}

test.serial('with no write actor on the front host, every 1 MiB chunk goes through Redis at once and is counted once', async (t) => {
  const before = await scrape();
  const n = 5;
  for (let i = 0; i < n; i++) {
    const file = fileRef(front, { file_id: 0x100n + BigInt(i) });
    const { blocks, data } = layOutChunks([{ block: { block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: randomBytes(1 << 20) }]);
    const put = await sendControlPlane(front.url, putChunksFields(file, blocks), front.ugKey, data);
    t.is(put.status, 200, put.body.toString());
  }
  const after = await scrape();
  const delta = (name: string, labels: Record<string, string> = {}) => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
  t.is(delta('sgw_chunk_transfers_total', { via: 'redis' }), n);
  t.is(delta('sgw_chunk_transfers_total', { via: 'host' }), 0);
  t.is(delta('sgw_chunk_host_misses_total'), 0, 'no chunk was tried as a host file first');
});

test.serial('with the driver host gone, cached chunks are still served and misses get 503 with Retry-After', async (t) => {
  const cachedUrl = formatBlockUrl(front.url, { volume_id: 3n, fs_path: '/dir/file.txt', file_id: 0x77n, file_version: -3n, block_id: 0n, block_version: 9n });
  await backGw.stop();
  await waitFor('no live read actor', async () => (await liveActors(redis, front.gatewayKey, 'driver:read')).length === 0);
  // The http actor's view of live actors lags Redis's by up to 0.5 s: its /ready shows when it caught up.
  await waitFor('the http actor to see no read actor', async () => ((await (await fetch(`${front.url}/ready`)).json()) as { missing: string[] }).missing.includes('driver:read'));
  const hit = await fetch(cachedUrl);
  t.is(hit.status, 200, 'a cache hit needs no driver');
  t.deepEqual(Buffer.from(await hit.arrayBuffer()), Buffer.from('stored by the driver host, cached by the front host'));
  const miss = await fetch(formatBlockUrl(front.url, { volume_id: 3n, fs_path: '/x', file_id: 0x78n, file_version: 1n, block_id: 0n, block_version: 1n }));
  t.is(miss.status, 503);
  t.truthy(miss.headers.get('retry-after'));
  // Refused up front because no read actor lives, not after waiting out a call's deadline.
  t.regex(await miss.text(), /missing driver:read/, 'answered at once, not after a deadline');
});

test.serial('a POST refused with 503 while no driver actor runs succeeds when the same signed bytes are sent again later', async (t) => {
  const file = fileRef(front, { file_id: 0x79n });
  const bytes = Buffer.from('retried after Retry-After');
  const { blocks, data } = layOutChunks([{ block: { block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes }]);
  const signed = signMessage({ ...putChunksFields(file, blocks), message_nonce: 2n ** 62n + 7n, signature: '' }, RequestCodec.encode, front.ugKey).bytes;
  const refused = await postRaw(front.url, signed, data);
  t.is(refused.status, 503);
  t.truthy(refused.retryAfter);
  backGw = startGatewayProcess(back.configFile, 'driver', back.dir, hostEnv(back.dir));
  await waitForGateway(front, redis);
  const retried = await postRaw(front.url, signed, data);
  t.is(retried.status, 200, retried.body.toString());
  t.is(retried.reply!.error_code, 0);
  const replayed = await postRaw(front.url, signed, data);
  t.is(replayed.status, 401, 'once carried out, the same bytes are a replay');
});
