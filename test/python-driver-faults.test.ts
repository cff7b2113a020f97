// A Python driver that prints, raises, exits or hangs costs that call only, inside its actor: the
// call gets a bounded answer, the chassis behind it is replaced, and the same read actors keep
// serving (the TypeScript equivalents, which recycle the whole actor, are in driver-faults.test.ts).
import test from 'ava';
import { listActors } from '../queues/registry.js';
import { childrenOf } from '../bench/support.js';
import { liveActors, waitFor } from './support/gateway.js';
import { answeredInTime, faultTests, timedOut, type FaultCase } from './support/driver-faults.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const FAULTY_DRIVER = `
import os, sys, time
from syndicate.util.gateway import log_error

def read_chunk(request, chunk_fd, config, secrets):
    block = request.block_id
    if block == 1:
        raise RuntimeError("the back-end is on fire")
    if block == 2:
        os._exit(3)
    if block == 3:
        time.sleep(60)
    if block == 4:
        sys.exit(4)
    if block == 5:
        print("0\\n5\\nhello")      # what desynchronised the original's stdout protocol
        log_error("driver says: block 5 is noisy")
    chunk_fd.write(b"block %d" % block)
    return 0
`;

const gateway = gatewayPerFile({
  driverSource: FAULTY_DRIVER, driverFile: 'driver.py',
  config: { actors: { concurrency: 4, count: { read: 2 } }, limits: { call_timeout_ms: 2500, request_timeout_ms: 4000 } },
}, ['driver:read']);

test.before(async () => {
  const { f, redis } = gateway;
  await waitFor('two read actors', async () => (await liveActors(redis, f.gatewayKey, 'driver:read')).length === 2);
});

const faults: FaultCase[] = [
  {
    title: 'a Python driver that prints to stdout does not disturb the protocol; its lines go to the log',
    block: 5n, healthy: 10n,
    check: async (t, r) => {
      t.is(r.status, 200);
      t.is(r.body, 'block 5');
      // Log lines are written in batches, a moment after the call.
      await waitFor('the driver\'s line in the log', async () => /driver says: block 5 is noisy/.test(gateway.gw.output()), 5000).catch(() => undefined);
      t.regex(gateway.gw.output(), /driver says: block 5 is noisy/);
    },
  },
  {
    title: 'a Python driver that raises gets 500 with the exception',
    block: 1n, healthy: 11n,
    check: (t, r) => {
      t.is(r.status, 500);
      t.regex(r.body, /read_chunk raised RuntimeError: the back-end is on fire/);
    },
  },
  {
    title: 'a Python driver that calls os._exit is restarted, retried once, then gets 500 within the deadline',
    block: 2n, healthy: 12n,
    check: (t, r) => {
      t.is(r.status, 500);
      t.regex(r.body, /exited \(code 3\).*retried once/);
      answeredInTime(t, r);
    },
  },
  {
    title: 'a Python driver that calls sys.exit is treated the same',
    block: 4n, healthy: 13n,
    check: (t, r) => {
      t.is(r.status, 500);
      t.regex(r.body, /exited \(code 4\)/);
    },
  },
  {
    title: 'a Python driver call that hangs gets 504 at its deadline (503 if that answer comes late), and the actor keeps serving',
    block: 3n, healthy: 14n,
    check: (t, r) => {
      timedOut(t, r);
    },
  },
];

// The fault was handled inside the actor: the same two read actors are alive.
faultTests(gateway, faults, async (t, before) => {
  const now = await liveActors(gateway.redis, gateway.f.gatewayKey, 'driver:read');
  t.deepEqual([...now].sort(), [...before].sort(), 'the read actors were not restarted');
});

test.serial('no chassis outlives its actor: killing a read actor outright takes its Python processes with it', async (t) => {
  const { f, redis } = gateway;
  const [instance] = await liveActors(redis, f.gatewayKey, 'driver:read');
  const actor = (await listActors(redis, f.gatewayKey, ['driver:read'])).find((a) => a.instance === instance)!;
  const chassis = childrenOf(actor.pid).filter((c) => c.args.includes('chassis.py')).map((c) => c.pid);
  t.true(chassis.length >= 1, 'the read actor runs Python chassis processes');
  process.kill(actor.pid, 'SIGKILL'); // no exit handler runs: the chassis notice the parent is gone
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  await waitFor('the orphaned chassis to exit', async () => chassis.every((pid) => !alive(pid)));
});
