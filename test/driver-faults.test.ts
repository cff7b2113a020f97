// A driver that throws, exits or hangs costs that call only: the call gets a bounded answer,
// the gateway keeps serving, and the supervisor replaces the broken actor.
import test from 'ava';
import { DISK_DRIVER_JS, liveActors, waitFor } from './support/gateway.js';
import { answeredInTime, faultProbes, faultTests, timedOut, type FaultCase } from './support/driver-faults.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

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

const gateway = gatewayPerFile({
  driverSource: FAULTY_DRIVER,
  config: { actors: { concurrency: 4, count: { read: 2 } }, limits: { call_timeout_ms: 2500, request_timeout_ms: 4000 } },
});

test.before(async () => {
  const { f, redis } = gateway;
  await waitFor('two read actors', async () => (await liveActors(redis, f.gatewayKey, 'driver:read')).length === 2);
});

const { readActors } = faultProbes(gateway);

/** Waits until a read actor that was not there before is alive, and two are alive again. */
async function replaced(before: string[]): Promise<void> {
  await waitFor('a replacement read actor', async () => {
    const now = await readActors();
    return now.length === 2 && now.some((id) => !before.includes(id));
  }, 30_000);
}

/**
 * One case per fault of FAULTY_DRIVER: the block that triggers it, what its answer must be, and
 * a healthy block to read afterwards. Each test then checks the gateway still serves and that
 * the supervisor replaced the broken read actor.
 */
const faults: FaultCase[] = [
  {
    title: 'a driver that throws gets 500 for that call, and its actor is replaced',
    block: 1n, healthy: 10n,
    check: (t, r) => {
      t.is(r.status, 500);
      t.regex(r.body, /threw|rc -5/);
    },
  },
  {
    title: 'a driver that exits its process gets 503 with Retry-After within the deadline, and is restarted',
    block: 2n, healthy: 11n,
    check: (t, r) => {
      t.is(r.status, 503);
      t.truthy(r.retryAfter);
      answeredInTime(t, r);
    },
  },
  {
    title: 'a driver call that never settles gets 504 at its deadline (503 if that answer comes late), and the actor is recycled',
    block: 3n, healthy: 12n,
    check: (t, r) => {
      timedOut(t, r);
    },
  },
  {
    title: 'a driver that blocks its event loop gets a bounded answer and is killed by the watchdog',
    block: 4n, healthy: 13n,
    check: (t, r) => {
      t.true(r.status === 503 || r.status === 504, `status ${r.status}`);
      answeredInTime(t, r);
    },
  },
];

faultTests(gateway, faults, async (_t, before) => replaced(before));
