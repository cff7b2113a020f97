// A driver that throws, exits or hangs costs that call only: the call gets a bounded answer,
// the gateway keeps serving, and the supervisor replaces the broken actor.
import test from 'ava';
import { Redis } from 'ioredis';
import { formatBlockUrl } from '../http/data-url.js';
import { testRedis } from './support/redis.js';
import {
  cleanup, DISK_DRIVER_JS, liveActors, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway,
  type GatewayFolder, type RunningGateway,
} from './support/gateway.js';

const FAULTY_DRIVER = `
import * as disk from ${JSON.stringify(DISK_DRIVER_JS)};
export const { driver_init, write_chunk, delete_chunk, rename_file } = disk;
export async function read_chunk(request, chunk_fd) {
  switch (request.block_id) {
    case 1n: throw new Error('the back-end is on fire');
    case 2n: process.exit(3);
    case 3n: return new Promise(() => {});            // never settles
    case 4n: { const end = Date.now() + 60000; while (Date.now() < end) {} return 0; } // blocks the loop
    default: chunk_fd.write(Buffer.from('block ' + request.block_id)); return 0;
  }
}
`;

let f: GatewayFolder;
let gw: RunningGateway;
let redis: Redis;

test.before(async () => {
  redis = new Redis((await testRedis()).url);
  f = await makeGatewayFolder({
    driverSource: FAULTY_DRIVER,
    config: { actors: { concurrency: 4, count: { read: 2 } }, limits: { call_timeout_ms: 2500, request_timeout_ms: 4000 } },
  });
  gw = startGatewayProcess(f.configFile);
  await waitForGateway(f, redis);
  await waitFor('two read actors', async () => (await liveActors(redis, f.gatewayKey, 'driver:read')).length === 2);
});

test.after.always(async () => {
  await gw?.stop();
  redis?.disconnect();
  cleanup([f.dir]);
});

const url = (block: bigint) => formatBlockUrl(f.url, { volume_id: 3n, fs_path: '/f', file_id: 0xabcn, file_version: 1n, block_id: block, block_version: 0n });

async function timedGet(block: bigint): Promise<{ status: number; ms: number; retryAfter: string | null; body: string }> {
  const started = Date.now();
  const res = await fetch(url(block));
  return { status: res.status, ms: Date.now() - started, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

/** Waits until a read actor that was not there before is alive, and two are alive again. */
async function replaced(before: string[]): Promise<void> {
  await waitFor('a replacement read actor', async () => {
    const now = await liveActors(redis, f.gatewayKey, 'driver:read');
    return now.length === 2 && now.some((id) => !before.includes(id));
  }, 30_000);
}

async function stillServing(t: { is: (a: unknown, b: unknown, m?: string) => void }, block: bigint): Promise<void> {
  const ok = await timedGet(block);
  t.is(ok.status, 200, `a healthy block is still served after the fault (${ok.body})`);
  t.is(ok.body, `block ${block}`);
}

test.serial('a driver that throws gets 500 for that call, and its actor is replaced', async (t) => {
  const before = await liveActors(redis, f.gatewayKey, 'driver:read');
  const r = await timedGet(1n);
  t.is(r.status, 500);
  t.regex(r.body, /threw|rc -5/);
  await stillServing(t, 10n);
  await replaced(before);
});

test.serial('a driver that exits its process gets 503 with Retry-After within the deadline, and is restarted', async (t) => {
  const before = await liveActors(redis, f.gatewayKey, 'driver:read');
  const r = await timedGet(2n);
  t.is(r.status, 503);
  t.truthy(r.retryAfter);
  t.true(r.ms < 4500, `answered in ${r.ms} ms`);
  await stillServing(t, 11n);
  await replaced(before);
});

test.serial('a driver call that never settles gets 504 at its deadline, and the actor is recycled', async (t) => {
  const before = await liveActors(redis, f.gatewayKey, 'driver:read');
  const r = await timedGet(3n);
  t.is(r.status, 504);
  t.true(r.ms < 4500, `answered in ${r.ms} ms`);
  await stillServing(t, 12n);
  await replaced(before);
});

test.serial('a driver that blocks its event loop gets a bounded answer and is killed by the watchdog', async (t) => {
  const before = await liveActors(redis, f.gatewayKey, 'driver:read');
  const r = await timedGet(4n);
  t.true(r.status === 503 || r.status === 504, `status ${r.status}`);
  t.true(r.ms < 4500, `answered in ${r.ms} ms`);
  await stillServing(t, 13n);
  await replaced(before);
});
