// /health and /ready on a gateway whose read and write actors run in process trees of their own,
// which the test stops and starts again: /ready follows and names the kinds of request it can serve;
// a request needs only the modes it uses (GETs go on without write actors, PUTs without read ones).
import test from 'ava';
import { Redis } from 'ioredis';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { Readiness, REQUEST_KINDS, type ReadinessReport, type ReadinessSources } from '../http/readiness.js';
import type { GatewayType } from '../queues/names.js';
import { testRedis } from './support/redis.js';
import {
  asAnotherHost, cleanup, fileRef, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, type GatewayFolder, type RunningGateway,
} from './support/gateway.js';

let f: GatewayFolder;
let front: RunningGateway;
let readers: RunningGateway;
let writers: RunningGateway;
let redis: Redis;

test.before(async () => {
  redis = new Redis((await testRedis()).url);
  f = await makeGatewayFolder();
  front = startGatewayProcess(f.configFile, 'http,cache,driver:delete,driver:rename', f.dir);
  readers = startGatewayProcess(f.configFile, 'driver:read', f.dir, asAnotherHost(f, 'readers'));
  writers = startGatewayProcess(f.configFile, 'driver:write', f.dir, asAnotherHost(f, 'writers'));
  try {
    await waitForGateway(f, redis);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- front output ---\n${front.output()}\n--- readers ---\n${readers.output()}\n--- writers ---\n${writers.output()}`);
  }
});

test.after.always(async () => {
  await Promise.all([front?.stop(), readers?.stop(), writers?.stop()]);
  redis?.disconnect();
  cleanup([f.dir]);
});

async function ready(): Promise<{ status: number; body: ReadinessReport; retryAfter: string | null }> {
  const res = await fetch(`${f.url}/ready`);
  return { status: res.status, body: (await res.json()) as ReadinessReport, retryAfter: res.headers.get('retry-after') };
}

function putOne(fileId: bigint, text: string) {
  const { blocks, data } = layOutChunks([{ block: { block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: Buffer.from(text) }]);
  return sendControlPlane(f.url, putChunksFields(fileRef(f, { file_id: fileId }), blocks), f.ugKey, data);
}

const blockUrl = (fileId: bigint) => formatBlockUrl(f.url, { volume_id: 3n, fs_path: '/dir/file.txt', file_id: fileId, file_version: -3n, block_id: 0n, block_version: 1n });

test.serial('/health is 200 and /ready is 200 naming the live actors of every needed mode', async (t) => {
  t.is((await fetch(`${f.url}/health`)).status, 200);
  const r = await waitFor('ready', async () => { const x = await ready(); return x.status === 200 && x; });
  t.true(r.body.ready);
  t.deepEqual(r.body.missing, []);
  t.true(r.body.redis);
  t.deepEqual(Object.keys(r.body.actors).sort(), ['driver:delete', 'driver:read', 'driver:rename', 'driver:write']);
  t.deepEqual(r.body.serves, { read: true, write: true, delete: true, rename: true });
});

test.serial('with the read actors stopped: /ready is 503 naming driver:read and saying writes are served; a PUTCHUNKS succeeds, a GET miss gets 503', async (t) => {
  t.is((await putOne(0x61n, 'written while ready')).status, 200);
  await readers.stop();
  const r = await waitFor('not ready', async () => { const x = await ready(); return x.status === 503 && x; });
  t.false(r.body.ready);
  t.deepEqual(r.body.missing, ['driver:read']);
  t.deepEqual(r.body.serves, { read: false, write: true, delete: true, rename: true });
  t.truthy(r.retryAfter);

  const put = await putOne(0x62n, 'written without read actors');
  t.is(put.status, 200, put.body.toString());
  const miss = await fetch(blockUrl(0x61n));
  t.is(miss.status, 503);
  t.truthy(miss.headers.get('retry-after'));
  t.regex(await miss.text(), /missing driver:read/);
  // Probes and scrapes are never gated.
  t.is((await fetch(`${f.url}/PING`)).status, 200);
  t.is((await fetch(`${f.url}/health`)).status, 200);
  t.is((await fetch(`${f.url}/metrics`)).status, 200);
});

test.serial('when the read actors return, /ready is 200 again and requests succeed', async (t) => {
  readers = startGatewayProcess(f.configFile, 'driver:read', f.dir, asAnotherHost(f, 'readers'));
  const r = await waitFor('ready again', async () => { const x = await ready(); return x.status === 200 && x; });
  t.deepEqual(r.body.missing, []);
  t.is((await putOne(0x63n, 'written once ready again')).status, 200);
  const got = await fetch(blockUrl(0x63n));
  t.is(got.status, 200);
  t.is(await got.text(), 'written once ready again');
  const earlier = await fetch(blockUrl(0x62n));
  t.is(await earlier.text(), 'written without read actors');
});

test.serial('with no write actor anywhere: GETs succeed, a PUTCHUNKS gets 503 naming driver:write, /ready says reads are served', async (t) => {
  await writers.stop();
  const r = await waitFor('writes not served', async () => { const x = await ready(); return x.status === 503 && x; });
  t.deepEqual(r.body.missing, ['driver:write']);
  t.deepEqual(r.body.serves, { read: true, write: false, delete: true, rename: false });

  for (const id of [0x61n, 0x63n]) t.is((await fetch(blockUrl(id))).status, 200, 'a GET needs no write actor');
  const miss = await fetch(blockUrl(0x64n));
  t.is(miss.status, 404, 'a GET that misses the cache is read by the read actors: nothing there');
  const put = await putOne(0x64n, 'refused without write actors');
  t.is(put.status, 503, put.body.toString());
  t.truthy(put.retryAfter);
  t.regex(put.body.toString(), /missing driver:write/);
  t.notRegex(put.body.toString(), /driver:read/);

  writers = startGatewayProcess(f.configFile, 'driver:write', f.dir, asAnotherHost(f, 'writers'));
  await waitFor('ready again', async () => (await ready()).status === 200);
  t.is((await putOne(0x64n, 'written once writers are back')).status, 200);
});

/** A Readiness over plain in-memory facts: which modes the driver has and how many actors each. */
function readinessOf(type: GatewayType, actors: Record<string, number> | null, opts: { redis?: boolean; needsDriver?: boolean } = {}) {
  const sources: ReadinessSources = {
    redisUp: () => opts.redis ?? true,
    modes: () => (actors ? Object.keys(actors) : null),
    needsDriver: opts.needsDriver ?? true,
    kinds: REQUEST_KINDS[type],
    liveActors: (mode) => actors?.[mode] ?? 0,
    recount: async () => undefined,
  };
  const r = new Readiness(sources);
  r.update();
  return r;
}

test('a request kind needs only the modes it uses, among those the driver has', async (t) => {
  // No serialize or deserialize in this driver: a GET needs read only, a PUTCHUNKS write only.
  const rg = readinessOf('RG', { read: 1, write: 0, delete: 2, rename: 1 });
  t.deepEqual(rg.report().serves, { read: true, write: false, delete: true, rename: false });
  t.false(rg.ready);
  await t.notThrowsAsync(rg.require(['read', 'serialize']));
  await t.notThrowsAsync(rg.require(['delete']));
  const refused = await t.throwsAsync(rg.require(['deserialize', 'write']));
  t.regex(refused!.message, /missing driver:write$/);
  t.like(refused, { status: 503 });

  const ag = readinessOf('AG', { read: 1, serialize: 1, refresh: 0 });
  t.deepEqual(ag.report().serves, { read: true, refresh: false });
  await t.notThrowsAsync(ag.require(['read', 'serialize']));

  const ugWithout = readinessOf('UG', null, { needsDriver: false });
  t.true(ugWithout.ready, 'a UG without a driver passes chunks through');
  t.deepEqual(ugWithout.report().serves, { read: true, write: true });
  const ug = readinessOf('UG', { cdn_url: 0, serialize: 1 }, { needsDriver: false });
  t.deepEqual(ug.report().serves, { read: false, write: true });
});

test('without Redis or without a driver version nothing is served, and a refusal says why', async (t) => {
  const noRedis = readinessOf('RG', { read: 1, write: 1 }, { redis: false });
  t.deepEqual(noRedis.report().serves, { read: false, write: false, delete: false, rename: false });
  t.regex((await t.throwsAsync(noRedis.require(['read'])))!.message, /missing redis$/);
  const noVersion = readinessOf('RG', null);
  t.deepEqual(noVersion.report().missing, ['driver version']);
  t.regex((await t.throwsAsync(noVersion.require(['read', 'serialize'])))!.message, /missing driver version$/);
});
