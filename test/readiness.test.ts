// /health and /ready on a gateway whose read actors run in a process tree of their own, which the
// test stops and starts again: /ready follows, and the whole data plane answers 503 meanwhile.
import test from 'ava';
import { Redis } from 'ioredis';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import type { ReadinessReport } from '../http/readiness.js';
import { testRedis } from './support/redis.js';
import {
  asAnotherHost, cleanup, fileRef, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, type GatewayFolder, type RunningGateway,
} from './support/gateway.js';

let f: GatewayFolder;
let front: RunningGateway;
let readers: RunningGateway;
let redis: Redis;

test.before(async () => {
  redis = new Redis((await testRedis()).url);
  f = await makeGatewayFolder();
  front = startGatewayProcess(f.configFile, 'http,cache,driver:write,driver:delete,driver:rename', f.dir);
  readers = startGatewayProcess(f.configFile, 'driver:read', f.dir, asAnotherHost(f, 'readers'));
  await waitForGateway(f, redis);
});

test.after.always(async () => {
  await Promise.all([front?.stop(), readers?.stop()]);
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
});

test.serial('with the read actors stopped: /ready is 503 naming driver:read, and every data-plane call gets 503', async (t) => {
  t.is((await putOne(0x61n, 'written while ready')).status, 200);
  await readers.stop();
  const r = await waitFor('not ready', async () => { const x = await ready(); return x.status === 503 && x; });
  t.false(r.body.ready);
  t.deepEqual(r.body.missing, ['driver:read']);
  t.truthy(r.retryAfter);

  // The write actors are alive, yet a PUTCHUNKS is refused: readiness is for the whole gateway.
  const put = await putOne(0x62n, 'refused while not ready');
  t.is(put.status, 503, put.body.toString());
  t.regex(put.body.toString(), /not ready: missing driver:read/);
  const miss = await fetch(blockUrl(0x61n));
  t.is(miss.status, 503);
  t.truthy(miss.headers.get('retry-after'));
  // Probes and scrapes are never gated.
  t.is((await fetch(`${f.url}/PING`)).status, 200);
  t.is((await fetch(`${f.url}/health`)).status, 200);
  t.is((await fetch(`${f.url}/metrics`)).status, 200);
});

test.serial('when the read actors return, /ready is 200 again and requests succeed', async (t) => {
  readers = startGatewayProcess(f.configFile, 'driver:read', f.dir, asAnotherHost(f, 'readers'));
  const r = await waitFor('ready again', async () => { const x = await ready(); return x.status === 200 && x; });
  t.deepEqual(r.body.missing, []);
  t.is((await putOne(0x62n, 'written once ready again')).status, 200);
  const got = await fetch(blockUrl(0x62n));
  t.is(got.status, 200);
  t.is(await got.text(), 'written once ready again');
});
