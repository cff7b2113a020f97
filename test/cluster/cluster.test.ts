// The cluster on separate hosts (network and mount namespaces, test/cluster/bed.ts): Redis with
// Sentinel on three hosts, an RG split over two front hosts behind HAProxy and two worker hosts, a
// UG host and an AG host. One bed for the whole file, its processes started once; each scenario
// runs under load and checks that every request is answered in time, with success or an allowed
// refusal, and that every acknowledged write reads back identical.
import test, { type ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { listActors } from '../../queues/registry.js';
import { keys } from '../../queues/names.js';
import { CLI, DISK_DRIVER_JS, liveActors, waitFor, writeDriver } from '../support/gateway.js';
import { parsePrometheusText, sampleValue } from '../support/prom-text.js';
import { Cluster, RG_ROLES } from './topology.js';
import { ClusterLoad, checkOutcome, type LoadAnswer } from './load.js';
import { waitForNewMaster } from '../support/redis-topologies.js';

let c: Cluster;

test.before(async (t) => {
  t.timeout(8 * 60_000, 'starting ten hosts on a loaded 2-core machine');
  c = await Cluster.start();
});

test.after.always(() => {
  c?.remove();
});

/** On failure, what the gateways logged at warn and above (all of it into SGW_CLUSTER_LOG, when set). */
function logFailure(t: ExecutionContext): void {
  t.teardown(() => {
    if (!t.passed && c && process.env.SGW_CLUSTER_LOG) writeFileSync(process.env.SGW_CLUSTER_LOG, `${c.output()}\n${c.redis.logs()}`);
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

/**
 * Refusals a client may get while a host is lost: "try again" (503 with Retry-After), a deadline
 * passed (504), or a read whose body is cut short when a later block cannot be had in time (its
 * status went out with the first block): a closed connection, never other bytes.
 */
const lossRefusals = (a: LoadAnswer): boolean => (a.status === 503 && a.retryAfter) || a.status === 504 || (a.kind === 'GET' && a.cut);

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
  t.is(after.host - before.host, 0, 'none was first tried as a host file: no worker shares a front host');
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

test.serial('Redis failover across hosts: the Sentinel master is killed under load; every host resumes', async (t) => {
  logFailure(t);
  const ug = c.ugClient();
  const load = new ClusterLoad(ug, '/failover').start();
  // On failure: when each write that later read back 404 was made, against the failover's steps.
  const marks: Record<string, number> = {};
  t.teardown(() => {
    if (t.passed) return;
    const lost = new Set(load.answers.filter((a) => a.kind === 'GET' && a.status === 404).map((a) => a.path));
    const at = (ms: number) => ms - (marks.kill ?? 0);
    t.log('steps (ms after the kill):', JSON.stringify(Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, at(v)]))));
    t.log('writes read back 404:', load.answers.filter((a) => a.kind === 'PUT' && lost.has(a.path)).map((a) => `${a.path} ${a.status} at ${at(a.started)} +${a.ms} ms`).join('; '));
  });
  try {
    await load.acknowledgedAfter(0, 4);
    const killed = await c.redis.master();
    const at = Date.now();
    marks.kill = at;
    await killed.kill();
    const master = await waitForNewMaster(c.redis, killed);
    marks.newMaster = Date.now();
    t.log(`master ${killed.host.name} killed; ${master.host.name} took over`);
    await load.acknowledgedAfter(at, 6);
    const resumed = Date.now();
    marks.resumed = resumed;
    for (const f of ['front1', 'front2'] as const) await c.waitReady(f, c.urlOf(f));
    for (const w of ['worker1', 'worker2'] as const) {
      const jobs = await c.jobsOn(w);
      await waitFor(`${w} to take jobs after the failover`, async () => (await c.jobsOn(w)) > jobs);
    }
    for (const [name, url] of [['the AG', c.agUrl], ['the UG', c.ugClient().url], ['the AG volume\'s UG', c.agUgClient().url]]) await c.waitReady(name!, url!);
    await load.acknowledgedAfter(resumed, 4);
    marks.restart = Date.now();
    await killed.start();
    await waitFor('the old master to rejoin as a replica', async () => {
      const role = (await killed.command('ROLE')) as [string, string, number, string];
      return role[0] === 'slave' && role[3] === 'connected';
    });
    marks.rejoined = Date.now();
  } finally {
    await load.stop();
  }
  await checkOutcome(t, load, ug, { refusals: lossRefusals }, () => c.output());
  const agUg = c.agUgClient();
  const small = await agUg.get('/pub/small.txt');
  t.is(small.status, 200);
});

test.serial('clock skew: a worker host 5 minutes ahead serves its share; once gone it stops being counted', async (t) => {
  logFailure(t);
  const ug = c.ugClient();
  const host = c.host('worker1');
  await c.stop('worker1');
  host.clock = '+5m';
  try {
    const ahead = Number(host.run(process.execPath, ['-e', 'process.stdout.write(String(Date.now()))'])) - Date.now();
    t.true(ahead > 4 * 60_000, `the host's clock is ${ahead} ms ahead`);
    c.startGateway('worker1', 'worker1', 'driver');
    await c.waitWorker('worker1');
    const load = new ClusterLoad(ug, '/skew').start();
    try {
      await load.acknowledgedAfter(0, 4);
      const jobs = await c.jobsOn('worker1');
      await waitFor('the skewed host to serve calls', async () => (await c.jobsOn('worker1')) >= jobs + 10);
      await load.acknowledgedAfter(Date.now(), 4);
    } finally {
      await load.stop();
    }
    // Deadlines: a call taken by the host ahead is carried out, not dropped as expired.
    await checkOutcome(t, load, ug, { refusals: () => false }, () => c.output());
    // Heartbeats: once the host is gone, its actors stop being counted within the liveness TTL, not 5 minutes later.
    await c.crash('worker1');
    await waitFor('the RG to count only worker2\'s actors', async () => (await liveActors(c.admin, c.rg.gatewayKey, 'driver:write')).length === (await c.actorsOn('worker2')).length);
  } finally {
    host.clock = undefined;
    if (host.pids().length === 0) await host.boot();
    else await c.stop('worker1');
    c.startGateway('worker1', 'worker1', 'driver');
    await c.waitWorker('worker1');
  }
});
