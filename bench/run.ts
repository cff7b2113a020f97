// `npm run bench`: every figure of issue 2's benchmark, each next to a baseline measured in the
// same run on this machine. Starts a private redis-server (never 6379) and a real gateway
// (`sgw start`) in a temp folder, stops everything it started, prints a table and writes
// dist/bench/results.json.
//   SGW_BENCH_SECONDS=5            length of each measured run
//   SGW_BENCH_ONLY=echo,disk,hit,miss,put,python,observe,ag,ug,ug1g,s3,aof,nonces,flood,wait,sizing,capacity,scaleout,idle   run some benchmarks only
//   (scaleout needs root: it makes hosts of network namespaces, bench/scale-out.ts)
//   SGW_BENCH_PROFILE=DIR          the gateways' processes write V8 CPU profiles to DIR (bench/cpu-profile.ts)
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { withMallocTuning } from '../actors/supervisor/malloc.js';
import { fileURLToPath } from 'node:url';
import { testRedis } from '../test/support/redis.js';
import { DISK_DRIVER_PY } from '../test/support/gateway.js';
import { startBenchGateway, ACTOR_CONCURRENCY, type BenchGateway } from './gateway.js';
import { bareEcho, bullmqEcho, diskDriverCalls, sgwEcho, IN_FLIGHT, type RoundTrips } from './driver-call.js';
import { cacheHitGets, cacheMissGets, CONNECTIONS, loneMisses, type GetResult } from './http-get.js';
import { putChunks, POSTS_IN_FLIGHT, WARMUP_MS } from './post-chunks.js';
import { agBenchmarks } from './ag.js';
import { formatRatios, LOAD_PROCESSES } from './load.js';
import { ugBenchmarks } from './ug.js';
import { ugLargeTransfers } from './ug-large.js';
import { idleGatewayMemory } from './idle-rss.js';
import { waitBenchmarks } from './wait.js';
import { scaleOutBenchmarks } from './scale-out.js';
import { capacityBenchmarks } from './capacity.js';
import { redisMemoryBenchmarks } from './redis-memory.js';
import { s3Benchmarks } from './s3.js';
import { aofBenchmarks } from './aof.js';
import { nonceBenchmarks } from './nonces.js';
import { observeCost } from './observe.js';
import { flood, FLOOD_CLIENTS } from './flood.js';
import { childrenOf, cpuTicks, formatCpu, memoryOf, MiB, profiled, RssSampler, sleep, usPerRequest } from './support.js';
import { printTable, ratio, writeJson, type Row } from './report.js';

const SECONDS = Number(process.env.SGW_BENCH_SECONDS ?? 5);
/**
 * A gateway at rest, not one just started: its actors give back what start-up grew after some
 * quiet seconds (actors/idle-memory.ts: a first collection after 2 s, another after 6 more).
 */
const IDLE_SECONDS = 30;
const PHASES = ['echo', 'disk', 'hit', 'miss', 'put', 'python', 'observe', 'ag', 'ug', 'ug1g', 's3', 'aof', 'nonces', 'flood', 'wait', 'sizing', 'capacity', 'scaleout', 'idle'] as const;
const ONLY = new Set((process.env.SGW_BENCH_ONLY ?? PHASES.join(',')).split(',').map((s) => s.trim()));
const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

type Phase = (g: BenchGateway, rows: Row[], raw: Record<string, unknown>) => Promise<void>;

function tripRows(label: string, t: RoundTrips, base: RoundTrips): Row[] {
  const b = 'bare echo';
  const p50: Row = { name: `${label}: p50 @${IN_FLIGHT}`, value: t.many.p50, unit: 'ms', baseline: base.many.p50, baselineName: b, target: 'ratio ≤ 2' };
  p50.pass = ratio(p50)! <= 2;
  const errors = t.one.errors + t.many.errors;
  return [
    { name: `${label}: p50 @1`, value: t.one.p50, unit: 'ms', baseline: base.one.p50, baselineName: b },
    p50,
    { name: `${label}: p99 @${IN_FLIGHT}`, value: t.many.p99, unit: 'ms', baseline: base.many.p99, baselineName: b },
    {
      name: `${label}: calls/s @${IN_FLIGHT}`, value: t.many.rate, unit: '/s', baseline: base.many.rate, baselineName: b,
      target: '≥ 5000/s', pass: t.many.rate >= 5000 && errors === 0,
      note: `${errors ? `${errors} calls failed or timed out; ` : ''}CPU cores: ${formatCpu(t.cpu)} (bare echo: ${formatCpu(base.cpu)})${disturbed(t.cpu, base.cpu)}`,
    },
  ];
}

/** A note when other processes used a noticeable part of the machine during a measurement. */
function disturbed(...cpus: (Record<string, number> | undefined)[]): string {
  const worst = Math.max(...cpus.map((c) => c?.others ?? 0));
  return worst > 0.25 ? `; DISTURBED: other processes used up to ${worst.toFixed(2)} cores meanwhile` : '';
}

// The bare echo is measured twice (around the sgw echo) and the better run is the baseline.
let bare: RoundTrips | null = null;
/** The rows of an HTTP GET load run: requests/s against Koa (with a pass rule) and p99. */
function getRows(
  label: string, run: Awaited<ReturnType<typeof cacheHitGets>>, target: string, passes: (row: Row) => boolean, notes: string[],
): Row[] {
  const row: Row = {
    name: `${label}, req/s (${CONNECTIONS} conns)`, value: run.gateway.rate, unit: '/s',
    baseline: run.koa.rate, baselineName: 'Koa from memory', target,
  };
  row.pass = passes(row) && run.gateway.failed === 0;
  notes.push(`gateway/Koa in ${run.ratios.length} alternated turns: ${formatRatios(run.ratios)} (the median turn's figures)`);
  notes.push(`CPU cores: ${formatCpu(run.cpu)}, load generator ${run.gateway.generatorCores} (Koa: ${formatCpu(run.koaCpu)}, load generator ${run.koa.generatorCores})${disturbed(run.cpu, run.koaCpu)}`);
  if (run.gateway.failed) notes.push(`${run.gateway.failed} failed: ${JSON.stringify(run.gateway.statuses)}`);
  row.note = notes.join('; ');
  return [row, {
    // Steadier than the rates on a shared machine: the server's CPU per answer.
    name: `${label}, server CPU per request`, value: usPerRequest(run.cpu.http, run.gateway.rate), unit: 'µs',
    baseline: usPerRequest(run.koaCpu.koa, run.koa.rate), baselineName: 'Koa',
  }, { name: `${label}, p99`, value: run.gateway.p99, unit: 'ms', baseline: run.koa.p99, baselineName: 'Koa' }];
}


/** The Python disk driver's figures against the TypeScript one's from the same run. */
function pythonRows(calls: RoundTrips, tsCalls: RoundTrips, miss: GetResult, tsMiss: GetResult): Row[] {
  const ts = 'TypeScript disk driver';
  const errors = calls.one.errors + calls.many.errors;
  return [
    { name: 'driver call, driver:read actor + Python disk driver: p50 @1', value: calls.one.p50, unit: 'ms', baseline: tsCalls.one.p50, baselineName: ts },
    { name: `driver call, driver:read actor + Python disk driver: p50 @${IN_FLIGHT}`, value: calls.many.p50, unit: 'ms', baseline: tsCalls.many.p50, baselineName: ts },
    {
      name: `driver call, driver:read actor + Python disk driver: calls/s @${IN_FLIGHT}`, value: calls.many.rate, unit: '/s', baseline: tsCalls.many.rate, baselineName: ts,
      note: `${errors ? `${errors} calls failed or timed out; ` : ''}CPU cores: ${formatCpu(calls.cpu)} (TypeScript: ${formatCpu(tsCalls.cpu)})${disturbed(calls.cpu, tsCalls.cpu)}`,
    },
    {
      name: `GET 4 KiB cache miss, Python disk driver, req/s (${CONNECTIONS} conns)`, value: miss.gateway.rate, unit: '/s', baseline: tsMiss.gateway.rate, baselineName: ts,
      note: `${miss.gateway.failed ? `${miss.gateway.failed} failed: ${JSON.stringify(miss.gateway.statuses)}; ` : ''}CPU cores: ${formatCpu(miss.cpu)}${disturbed(miss.cpu)}`,
    },
  ];
}

// Plain BullMQ jobs carrying the bare echo's frames: what one call as one job costs at the least.
let bullmq: RoundTrips | null = null;
async function bullmqFloor(url: string): Promise<RoundTrips> {
  if (!bullmq) {
    log('driver call: the bare echo\'s frames as plain BullMQ jobs');
    bullmq = await bullmqEcho(url, SECONDS);
  }
  return bullmq;
}

async function bareBaseline(url: string, again = false): Promise<RoundTrips> {
  if (!bare || again) {
    log(`driver call: bare Redis LPUSH/BRPOP echo through a worker process${bare ? ' (again)' : ''}`);
    const run = await bareEcho(url, SECONDS);
    if (!bare || run.many.rate > bare.many.rate) bare = run;
  }
  return bare;
}

/** A phase whose rows are all its own (most run on gateways of their own): its raw figures under its name. */
function standalone(name: string, run: (g: BenchGateway) => Promise<{ rows: Row[]; raw: Record<string, unknown> }>): Phase {
  return async (g, rows, raw) => {
    const r = await run(g);
    rows.push(...r.rows);
    raw[name] = r.raw;
  };
}

const phases: Record<(typeof PHASES)[number], Phase> = {
  async ag(g, rows, raw) {
    // The AG's figures are held against this RG's, measured in turns with them.
    const ag = await agBenchmarks(SECONDS, g);
    rows.push(...ag.rows);
    raw.ag = ag.raw;
  },
  async ug(_g, rows, raw) {
    const ug = await ugBenchmarks();
    rows.push(...ug.rows);
    raw.ug = ug.raw;
  },
  async idle(_g, rows, raw) {
    log(`idle memory: the demo RG alone (sgw start --demo rg), ${IDLE_SECONDS} s after it serves`);
    const m = await idleGatewayMemory(IDLE_SECONDS);
    raw.idle = m;
    const each = m.processes.map((p) => `${p.args} ${(p.rssKb / 1024).toFixed(0)}/${(p.pssKb / 1024).toFixed(0)}/${(p.anonKb / 1024).toFixed(0)}`).join('; ');
    rows.push({
      name: `RSS of a default RG (sgw start --demo rg), idle, all ${m.processes.length} processes`, value: m.rssKb / 1024, unit: 'MiB',
      target: '≤ 300 MiB', pass: m.rssKb / 1024 <= 300, note: `per process RSS/PSS/anonymous MiB: ${each}`,
    }, {
      name: 'same, PSS (shared pages counted once)', value: m.pssKb / 1024, unit: 'MiB',
      note: 'each node process maps ~40 MB of the node binary that RSS counts again for every process',
    });
  },
  ug1g: standalone('ug1g', () => ugLargeTransfers()),
  s3: standalone('s3', () => s3Benchmarks(SECONDS)),
  aof: standalone('aof', () => aofBenchmarks()),
  nonces: standalone('nonces', () => nonceBenchmarks()),
  sizing: standalone('sizing', () => redisMemoryBenchmarks()),
  wait: standalone('wait', () => waitBenchmarks(SECONDS)),
  capacity: standalone('capacity', (g) => capacityBenchmarks(g)),
  scaleout: standalone('scaleout', () => scaleOutBenchmarks(SECONDS)),
  async echo(g, rows, raw) {
    await bareBaseline(g.f.redisUrl);
    log('driver call: sgw ask/reply to an echo CallServer process (first 100k calls watching Redis memory)');
    const echo = await sgwEcho(g.f.redisUrl, SECONDS);
    const base = await bareBaseline(g.f.redisUrl, true);
    raw.bare = base; raw.echo = echo;
    rows.push(...tripRows('driver call, ask/reply machinery (echo CallServer)', echo.trips, base));
    const floor = await bullmqFloor(g.f.redisUrl);
    raw.bullmq = floor;
    rows.push(
      { name: 'plain BullMQ job + reply list, no sgw code: p50 @1', value: floor.one.p50, unit: 'ms', baseline: base.one.p50, baselineName: 'bare echo' },
      { name: `plain BullMQ job + reply list, no sgw code: calls/s @${IN_FLIGHT}`, value: floor.many.rate, unit: '/s', baseline: base.many.rate, baselineName: 'bare echo', note: `CPU cores: ${formatCpu(floor.cpu)}` },
    );
    const m = echo.memory.usedMemory;
    const growth = ((m.quarters[3] ?? NaN) - (m.quarters[1] ?? NaN)) / MiB;
    rows.push({
      name: `Redis used_memory after ${echo.memory.calls.count} ask() calls`, value: (m.quarters[3] ?? NaN) / MiB, unit: 'MiB',
      target: '≤ +2 MiB over the last half', pass: echo.memory.calls.count >= 100_000 && echo.memory.calls.errors === 0 && growth <= 2,
      note: `before ${(m.before / MiB).toFixed(1)} MiB, after each 25k ${m.quarters.map((q) => (q / MiB).toFixed(1)).join(' / ')} MiB, 2 s later ${(m.settled / MiB).toFixed(1)} MiB; `
        + `growth over the last half ${growth.toFixed(2)} MiB; ${echo.memory.calls.errors} failed; jobs kept ${JSON.stringify(echo.memory.retainedJobs)}`,
    });
  },
  async disk(g, rows, raw) {
    const base = await bareBaseline(g.f.redisUrl);
    log('driver call: sgw ask/reply to the gateway\'s driver:read actor (disk driver)');
    const disk = await diskDriverCalls(g, SECONDS);
    raw.disk = disk;
    rows.push(...tripRows('driver call, driver:read actor + disk driver', disk, base));
  },
  async hit(g, rows, raw) {
    log('GET cache hits, 64 KiB, gateway then Koa');
    const hit = await cacheHitGets(g, SECONDS);
    log('GET cache hits, 4 KiB, gateway then Koa');
    const small = await cacheHitGets(g, SECONDS, 4096);
    raw.hit = hit;
    raw.hit4k = small;
    rows.push(...getRows('GET 64 KiB cache hit', hit, 'ratio ≥ 0.7', (r) => ratio(r)! >= 0.7, []));
    rows.push(...getRows('GET 4 KiB cache hit', small, 'ratio ≥ 0.7', (r) => ratio(r)! >= 0.7, []));
  },
  async miss(g, rows, raw) {
    log('GET cache misses, 4 KiB, gateway then Koa');
    const miss = await cacheMissGets(g, SECONDS);
    raw.miss = miss;
    const notes = [`${miss.blocks} distinct blocks, each requested once`];
    if (miss.exhausted) notes.push('ran out of prepared blocks before the time limit');
    rows.push(...getRows('GET 4 KiB cache miss', miss, '≥ 3000/s', (r) => r.value >= 3000, notes));
    log('GET cache misses one at a time, then /PING one at a time');
    const lone = await loneMisses(g);
    const base = await bareBaseline(g.f.redisUrl);
    const floor = await bullmqFloor(g.f.redisUrl);
    raw.lone = lone;
    const driverPath = lone.miss.p50 - lone.ping.p50;
    rows.push({
      name: 'lone GET 4 KiB cache miss (1 in flight): driver path p50 (GET − /PING)', value: driverPath, unit: 'ms',
      baseline: base.one.p50, baselineName: 'bare LPUSH/BRPOP echo @1', target: 'ratio ≤ 3', pass: driverPath / base.one.p50 <= 3 && lone.miss.errors === 0,
      note: `GET p50 ${lone.miss.p50.toFixed(2)} ms, p99 ${lone.miss.p99.toFixed(2)} ms; /PING p50 ${lone.ping.p50.toFixed(2)} ms${lone.miss.errors ? `; ${lone.miss.errors} failed` : ''}; `
        + `a plain BullMQ job round trip (no sgw code) @1: p50 ${floor.one.p50.toFixed(2)} ms (${(floor.one.p50 / base.one.p50).toFixed(1)}× the bare echo)`,
    });
  },
  async put(g, rows, raw) {
    log('POST PUTCHUNKS, 1 MiB, gateway then node:http');
    const put = await putChunks(g, SECONDS);
    raw.put = put;
    const row: Row = {
      name: `POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight, after ${WARMUP_MS / 1000} s of warm-up)`, value: put.gatewayMBps, unit: 'MB/s',
      baseline: put.baselineMBps, baselineName: 'node:http + fsync', target: '≥ 200 MB/s',
    };
    row.pass = row.value >= 200 && put.gateway.errors === 0;
    row.note = `CPU cores: ${formatCpu(put.cpu)} (node:http: ${formatCpu(put.baselineCpu)})${disturbed(put.cpu, put.baselineCpu)}`;
    if (put.gateway.errors) row.note += `; ${put.gateway.errors} POSTs failed`;
    rows.push(row, { name: 'POST PUTCHUNKS 1 MiB, p50', value: put.gateway.p50, unit: 'ms', baseline: put.baseline.p50, baselineName: 'node:http' });
  },
  async flood(_g, rows, raw) {
    log(`flood: ${FLOOD_CLIENTS} clients POSTing a bogus control plane and 200 MiB each (paced over 15 s), on a gateway with default limits`);
    const f = await flood(Math.max(SECONDS, 15));
    raw.flood = f;
    const statuses = Object.entries(f.statuses).map(([s, n]) => `${n}× ${s}`).join(', ');
    rows.push(
      {
        name: `flood of ${FLOOD_CLIENTS} bogus 200 MiB POSTs: total RSS of the gateway, MiB`, value: f.rssPeakMiB, unit: 'MiB', baseline: f.rssIdleMiB, baselineName: 'idle',
        target: '+ < 512 MiB', pass: f.rssPeakMiB - f.rssIdleMiB < 512,
        note: `${f.posts} POSTs (${statuses}); each answered after at most ${f.maxSentMiB.toFixed(1)} MiB of its 200`,
      },
      {
        name: 'flood: /PING p99', value: f.ping.flood.p99, unit: 'ms', baseline: f.ping.idle.p99, baselineName: 'no flood',
        pass: f.ping.flood.failed === 0, note: `p50 ${f.ping.flood.p50.toFixed(1)} ms (no flood ${f.ping.idle.p50.toFixed(1)}); ${f.ping.flood.count} PINGs, ${f.ping.flood.failed} failed`,
      },
    );
  },
  async observe(g, rows, raw) {
    log('GET 64 KiB cache hits through two front http actors: metrics + request log on, then off (alternating)');
    const o = await observeCost(g, SECONDS);
    raw.observe = o;
    const failed = [...o.on, ...o.off].reduce((a, r) => a + r.failed, 0);
    // As for the other alternated rows: the round whose on/off ratio is the median.
    const ratios = o.on.map((r, i) => r.rate / o.off[i]!.rate);
    const median = ratios.map((r, i) => ({ r, i })).sort((a, b) => a.r - b.r)[Math.floor((ratios.length - 1) / 2)]!.i;
    const row: Row = {
      name: `GET 64 KiB cache hit, metrics + request log on, req/s (${CONNECTIONS} conns)`, value: o.on[median]!.rate, unit: '/s',
      baseline: o.off[median]!.rate, baselineName: 'metrics and request log off', target: 'ratio ≥ 0.9',
    };
    row.pass = ratio(row)! >= 0.9 && failed === 0 && o.metricsCounted > 0 && o.logLines > 0;
    row.note = `rounds on ${o.on.map((r) => Math.round(r.rate)).join(' / ')}, off ${o.off.map((r) => Math.round(r.rate)).join(' / ')} req/s, on/off ${formatRatios(ratios)} (the median round's figures); `
      + `the "on" actor wrote ${o.logLines} request lines (${(o.logBytes / MiB).toFixed(1)} MiB) and counted ${o.metricsCounted} requests in /metrics`
      + `${failed ? `; ${failed} requests failed` : ''}`;
    rows.push(row, {
      name: 'GET 64 KiB cache hit, http actor CPU per request, metrics + request log on', value: o.onCpuUs, unit: 'µs',
      baseline: o.offCpuUs, baselineName: 'off',
    }, {
      name: 'GET 64 KiB cache hit, metrics + request log on, p99', value: mean(o.on.map((r) => r.p99)), unit: 'ms',
      baseline: mean(o.off.map((r) => r.p99)), baselineName: 'off',
    });
  },
  async python(g, rows, raw) {
    log('Python disk driver: a second gateway running the Python twin of the disk driver');
    const py = await startBenchGateway({ driverSource: DISK_DRIVER_PY, driverFile: 'driver.py' });
    try {
      // The TypeScript figures of this run when their phases ran, else measured now.
      const tsCalls = (raw.disk as RoundTrips | undefined) ?? (log('driver call: TypeScript disk driver'), await diskDriverCalls(g, SECONDS));
      log('driver call: sgw ask/reply to the driver:read actor running the Python disk driver');
      const calls = await diskDriverCalls(py, SECONDS);
      const tsMiss = (raw.miss as GetResult | undefined) ?? (log('GET cache misses, TypeScript disk driver'), await cacheMissGets(g, SECONDS));
      log('GET cache misses, 4 KiB, Python disk driver');
      const miss = await cacheMissGets(py, SECONDS);
      raw.python = { calls, miss };
      rows.push(...pythonRows(calls, tsCalls, miss, tsMiss));
    } finally {
      await py.stop();
    }
  },
};

function mean(xs: number[]): number {
  return xs.reduce((a, x) => a + x, 0) / xs.length;
}

async function main(): Promise<void> {
  const started = Date.now();
  const cpu0 = cpuTicks();
  log(`node ${process.version}, ${cpus().length} cores, ${SECONDS} s per measured run`);
  const redisServer = await testRedis();
  let g: BenchGateway | null = null;
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  try {
    log('starting the gateway (sgw start: supervisor, http+cache actor, a driver actor per mode)');
    g = await profiled(() => startBenchGateway());
    await sleep(2000);
    const actors = ['http', 'driver:read', 'driver:write'].filter((r) => g!.pids[r]);
    const idle = Object.fromEntries(actors.map((r) => [r, memoryOf(g!.pids[r]!)?.rssKb ?? NaN]));
    let sampler: RssSampler | null = null;
    for (const name of PHASES) {
      if (!ONLY.has(name)) continue;
      if (name !== 'echo') sampler ??= new RssSampler(actors.map((r) => g!.pids[r]!)).start(); // load on the gateway
      await phases[name](g, rows, raw);
    }
    const loaded = sampler?.stop() ?? new Map<number, number>();
    for (const r of actors) {
      const pid = g.pids[r]!;
      const peak = (memoryOf(pid)?.hwmKb ?? NaN) / 1024;
      rows.push({ name: `RSS ${r} actor, idle`, value: idle[r]! / 1024, unit: 'MiB' });
      rows.push({ name: `RSS ${r} actor, loaded (max sampled)`, value: (loaded.get(pid) ?? NaN) / 1024, unit: 'MiB', note: `VmHWM (peak) ${peak.toFixed(1)} MiB` });
    }
    raw.rssKb = { idle, loadedMax: Object.fromEntries(actors.map((r) => [r, loaded.get(g!.pids[r]!)])) };
  } finally {
    log('stopping the gateway and the private redis-server');
    await g?.stop();
    await redisServer.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  const cpu1 = cpuTicks();
  // Clock ticks are 1/100 s on Linux; CPU the machine spent outside this process tree, in cores.
  const others = (cpu1.busy - cpu0.busy - (cpu1.mine - cpu0.mine)) / 100 / seconds;
  process.stdout.write(`\nsgw bench — node ${process.version}, ${cpus().length} cores, ${seconds.toFixed(0)} s; `
    + `driver calls ${IN_FLIGHT} in flight (actor concurrency ${ACTOR_CONCURRENCY}); HTTP load from ${LOAD_PROCESSES} processes (node:http, bench/load.ts).\n`
    + `Other processes used ${others.toFixed(2)} cores on average during the run${others > 0.2 ? ' — figures are disturbed, run again on a quiet machine' : ''}.\n\n`);
  printTable(rows);
  writeJson(RESULTS, { date: new Date().toISOString(), node: process.version, cores: cpus().length, seconds, otherCores: others, rows, raw });
  process.stdout.write(`\nresults: ${RESULTS}\n`);
  const left = childrenOf(process.pid).filter((c) => !c.args.startsWith('ps '));
  if (left.length) process.stderr.write(`bench: leftover child processes: ${JSON.stringify(left)}\n`);
}

// This process is a load generator too (the UG phases' client, the driver-call askers): it runs
// with the malloc settings the actors and baselines get (actors/supervisor/malloc.ts), or its own
// fresh-memory page faults weigh on the figures of both sides.
if (process.env.GLIBC_TUNABLES === undefined) {
  const again = spawnSync(process.execPath, process.argv.slice(1), { stdio: 'inherit', env: withMallocTuning(process.env) });
  process.exit(again.status ?? 1);
}
main().then(() => process.exit(0), (err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
