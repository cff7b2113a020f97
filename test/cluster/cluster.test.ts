// The cluster on separate hosts (network and mount namespaces, test/cluster/bed.ts): Redis with
// Sentinel on three hosts, an RG split over two front hosts behind HAProxy and two worker hosts, a
// UG host and an AG host. One bed for the whole file, its processes started once; each scenario
// runs under load and checks that every request is answered in time, with success or an allowed
// refusal, and that every acknowledged write reads back identical.
import test, { type ExecutionContext } from 'ava';
import { listActors } from '../../queues/registry.js';
import { keys } from '../../queues/names.js';
import { CLI, DISK_DRIVER_JS, waitFor, writeDriver } from '../support/gateway.js';
import { parsePrometheusText, sampleValue } from '../support/prom-text.js';
import { Cluster, RG_ROLES } from './topology.js';
import { ClusterLoad, checkOutcome, type LoadAnswer } from './load.js';

let c: Cluster;

test.before(async (t) => {
  t.timeout(8 * 60_000, 'starting ten hosts on a loaded 2-core machine');
  c = await Cluster.start();
});

test.after.always(() => {
  c?.remove();
});

/** On failure, what the gateways logged at warn and above. */
function logFailure(t: ExecutionContext): void {
  t.teardown(() => {
    if (!t.passed && c) t.log(c.output().split('\n').filter((l) => /"level":(40|50|60)|Error|error/.test(l)).slice(-40).map((l) => l.slice(0, 400)).join('\n'));
  });
}

async function chunkTransfers(): Promise<{ host: number; redis: number }> {
  const sum = { host: 0, redis: 0 };
  for (const f of ['front1', 'front2'] as const) {
    const m = parsePrometheusText(await (await fetch(`${c.urlOf(f)}/metrics`)).text());
    sum.host += sampleValue(m, 'sgw_chunk_transfers_total', { via: 'host' }) ?? 0;
    sum.redis += sampleValue(m, 'sgw_chunk_transfers_total', { via: 'redis' }) ?? 0;
  }
  return sum;
}

/** Refusals a client may get while a host is lost: "try again" (503 with Retry-After) or a deadline passed (504). */
const lossRefusals = (a: LoadAnswer): boolean => (a.status === 503 && a.retryAfter) || a.status === 504;

test.serial('the RG/UG/AG scenario runs through the load balancer; chunks between hosts travel through Redis', async (t) => {
  logFailure(t);
  const ug = c.ugClient();
  const before = await chunkTransfers();
  const load = new ClusterLoad(ug, '/basic', 2).start();
  try {
    await load.acknowledgedAfter(0, 6);
  } finally {
    await load.stop();
  }
  await checkOutcome(t, load, ug);
  const after = await chunkTransfers();
  t.log(`chunk transfers: via redis ${after.redis - before.redis}, via host ${after.host - before.host}`);
  t.true(after.redis - before.redis > 0, 'chunks over 64 KiB crossed from the front hosts to the worker hosts through Redis');
  const lb = await c.lb.status();
  t.deepEqual([lb.get('front1'), lb.get('front2')], ['UP', 'UP']);

  const agUg = c.agUgClient();
  for (const [path, bytes] of c.dataset.files) {
    await waitFor(`the AG to publish ${path}`, async () => (await agUg.stat(path)).status === 200);
    const got = await agUg.get(path);
    t.is(got.status, 200, got.body.toString());
    t.true(got.body.equals(bytes), `${path} read from the AG host byte for byte`);
  }
});

test.serial('host loss: kill -9 of every process of a worker host; calls are answered, the host restarted takes work again', async (t) => {
  logFailure(t);
  const ug = c.ugClient();
  const load = new ClusterLoad(ug, '/hostloss').start();
  try {
    await load.acknowledgedAfter(0, 4);
    const at = Date.now();
    await c.crash('worker1');
    await load.acknowledgedAfter(at, 6);
    await c.host('worker1').boot();
    c.startGateway('worker1', 'worker1', 'driver');
    await c.waitWorker('worker1');
    await waitFor('worker1 to take jobs again', async () => (await c.jobsOn('worker1')) > 0);
  } finally {
    await load.stop();
  }
  await checkOutcome(t, load, ug, { refusals: lossRefusals }, () => c.output());
});

test.serial('partition: a worker host cut off for 20 s rejoins without a restart', async (t) => {
  logFailure(t);
  const ug = c.ugClient();
  const host = c.host('worker2');
  const pids = host.workload().sort();
  const load = new ClusterLoad(ug, '/partition').start();
  try {
    await load.acknowledgedAfter(0, 4);
    const at = Date.now();
    host.link(false);
    try {
      await load.acknowledgedAfter(at, 4);
      // The scenario is a 20 s cut: long past every lease, heartbeat and call deadline.
      await new Promise((r) => setTimeout(r, Math.max(0, at + 20_000 - Date.now())));
    } finally {
      host.link(true);
    }
    const healed = Date.now();
    await c.waitWorker('worker2');
    const jobs = await c.jobsOn('worker2');
    await waitFor('worker2 to take jobs after healing', async () => (await c.jobsOn('worker2')) > jobs);
    await load.acknowledgedAfter(healed, 4);
  } finally {
    await load.stop();
  }
  t.deepEqual(host.workload().sort(), pids, 'no process of the host was restarted');
  await checkOutcome(t, load, ug, { refusals: lossRefusals }, () => c.output());
});

test.serial('front host loss: HAProxy routes around it; no request gets a wrong answer', async (t) => {
  logFailure(t);
  const ug = c.ugClient();
  const load = new ClusterLoad(ug, '/frontloss').start();
  try {
    await load.acknowledgedAfter(0, 4);
    await c.crash('front2');
    const at = Date.now();
    await c.lb.waitDown('front2');
    await load.acknowledgedAfter(at, 6);
    await c.host('front2').boot();
    c.startGateway('front2', 'front2', 'http,cache');
    await c.lb.waitUp(['front1', 'front2']);
    await load.acknowledgedAfter(Date.now(), 4);
  } finally {
    await load.stop();
  }
  // A request in flight on the lost host ends with the load balancer's 502 or a refusal, never a wrong answer.
  await checkOutcome(t, load, ug, { refusals: (a) => lossRefusals(a) || a.status === 502 }, () => c.output());
});

test.serial('rolling driver upgrade: sgw driver publish during load, zero failed requests', async (t) => {
  logFailure(t);
  const ug = c.ugClient();
  const gateway = c.rg.gatewayKey;
  const old = await c.admin.get(keys.driverCurrent(gateway));
  const load = new ClusterLoad(ug, '/upgrade').start();
  let published = '';
  try {
    await load.acknowledgedAfter(0, 4);
    writeDriver(c.rg.dir, `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`, { STORAGE_DIR: `${c.bed.root}/storage`, TAG: 'v2' });
    const out = await new Promise<string>((resolve, reject) => {
      const p = c.host('front1').spawn(process.execPath, [CLI, 'driver', 'publish', '--config', c.rg.configFile], { cwd: c.rg.dir });
      let text = '';
      p.stdout?.on('data', (d: Buffer) => { text += d.toString(); });
      p.stderr?.on('data', (d: Buffer) => { text += d.toString(); });
      p.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`sgw driver publish: exit ${code}: ${text}`))));
    });
    t.regex(out, /published/);
    published = out.split(' ')[0]!;
    t.not(published, old);
    await waitFor('every driver actor on the new version', async () => {
      const actors = await listActors(c.admin, gateway, RG_ROLES);
      return actors.length >= 8 && actors.every((a) => a.version === published);
    });
    await load.acknowledgedAfter(Date.now(), 4);
  } finally {
    await load.stop();
  }
  await checkOutcome(t, load, ug, { refusals: () => false }, () => c.output());
});
