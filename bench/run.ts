// `npm run bench`: every figure of issue 2's benchmark, each next to a baseline measured in the
// same run on this machine. Starts a private redis-server (never 6379) and a real gateway
// (`sgw start`) in a temp folder, stops everything it started, prints a table and writes
// dist/bench/results.json.
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { testRedis } from '../test/support/redis.js';
import { startBenchGateway, ACTOR_CONCURRENCY, type BenchGateway } from './gateway.js';
import { bareEcho, diskDriverCalls, sgwEcho, IN_FLIGHT, type RoundTrips } from './driver-call.js';
import { cacheHitGets, cacheMissGets, CONNECTIONS } from './http-get.js';
import { putChunks, POSTS_IN_FLIGHT } from './post-chunks.js';
import { childrenOf, memoryOf, MiB, RssSampler, sleep } from './support.js';
import { printTable, ratio, writeJson, type Row } from './report.js';

const SECONDS = Number(process.env.SGW_BENCH_SECONDS ?? 5);
const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

function tripRows(label: string, t: RoundTrips, base: RoundTrips, strict: boolean): Row[] {
  const b = 'bare echo';
  const p50 = { name: `${label}: p50 @${IN_FLIGHT}`, value: t.many.p50, unit: 'ms', baseline: base.many.p50, baselineName: b };
  const rate = { name: `${label}: calls/s @${IN_FLIGHT}`, value: t.many.rate, unit: '/s', baseline: base.many.rate, baselineName: b };
  const rows: Row[] = [
    { name: `${label}: p50 @1`, value: t.one.p50, unit: 'ms', baseline: base.one.p50, baselineName: b },
    strict ? { ...p50, target: 'ratio ≤ 2', pass: ratio(p50)! <= 2 } : p50,
    { name: `${label}: p99 @${IN_FLIGHT}`, value: t.many.p99, unit: 'ms', baseline: base.many.p99, baselineName: b },
    strict ? { ...rate, target: '≥ 5000/s', pass: rate.value >= 5000 } : rate,
  ];
  const errors = t.one.errors + t.many.errors;
  if (errors) rows[rows.length - 1]!.note = `${errors} calls failed or timed out`;
  return rows;
}

async function main(): Promise<void> {
  const started = Date.now();
  log(`node ${process.version}, ${cpus().length} cores, ${SECONDS} s per measured run`);
  const redisServer = await testRedis();
  let g: BenchGateway | null = null;
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  try {
    log('starting the gateway (sgw start: supervisor, http+cache, driver actors)');
    g = await startBenchGateway();
    await sleep(2000);
    const actors = ['http', 'driver:read', 'driver:write'].filter((r) => g!.pids[r]);
    const idle = Object.fromEntries(actors.map((r) => [r, memoryOf(g!.pids[r]!)?.rssKb ?? NaN]));

    log('driver call: bare Redis LPUSH/BRPOP echo');
    const bare = await bareEcho(redisServer.url, SECONDS);
    log('driver call: sgw ask/reply to an echo CallServer (first 100k calls watching Redis memory)');
    const echo = await sgwEcho(redisServer.url, SECONDS);
    const sampler = new RssSampler(actors.map((r) => g!.pids[r]!)).start();
    log('driver call: sgw ask/reply to the gateway\'s driver:read actor (disk driver)');
    const disk = await diskDriverCalls(g, SECONDS);
    log('GET cache hits, 64 KiB');
    const hit = await cacheHitGets(g, SECONDS);
    log('GET cache misses, 4 KiB');
    const miss = await cacheMissGets(g, SECONDS);
    log('POST PUTCHUNKS, 1 MiB');
    const put = await putChunks(g, SECONDS);
    const loadedMax = sampler.stop();
    raw.bare = bare; raw.echo = echo; raw.disk = disk; raw.hit = hit; raw.miss = miss; raw.put = put;

    rows.push(...tripRows('driver call, ask/reply machinery (echo CallServer)', echo.trips, bare, true));
    rows.push(...tripRows('driver call, driver:read actor + disk driver', disk, bare, true));

    const hitRow: Row = {
      name: `GET 64 KiB cache hit, req/s (${CONNECTIONS} conns)`, value: hit.gateway.rate, unit: '/s',
      baseline: hit.koa.rate, baselineName: 'Koa from memory', target: 'ratio ≥ 0.7',
    };
    hitRow.pass = ratio(hitRow)! >= 0.7 && hit.gateway.failed === 0;
    if (hit.gateway.failed) hitRow.note = `${hit.gateway.failed} failed: ${JSON.stringify(hit.gateway.statuses)}`;
    rows.push(hitRow, { name: 'GET 64 KiB cache hit, p99', value: hit.gateway.p99, unit: 'ms', baseline: hit.koa.p99, baselineName: 'Koa' });

    const missRow: Row = {
      name: `GET 4 KiB cache miss, req/s (${CONNECTIONS} conns)`, value: miss.gateway.rate, unit: '/s',
      baseline: miss.koa.rate, baselineName: 'Koa from memory', target: '≥ 3000/s',
    };
    missRow.pass = missRow.value >= 3000 && miss.gateway.failed === 0;
    const missNotes = [`${miss.blocks} distinct blocks, each requested once`];
    if (miss.exhausted) missNotes.push('ran out of prepared blocks before the time limit');
    if (miss.gateway.failed) missNotes.push(`${miss.gateway.failed} failed: ${JSON.stringify(miss.gateway.statuses)}`);
    missRow.note = missNotes.join('; ');
    rows.push(missRow, { name: 'GET 4 KiB cache miss, p99', value: miss.gateway.p99, unit: 'ms', baseline: miss.koa.p99, baselineName: 'Koa' });

    const putRow: Row = {
      name: `POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight)`, value: put.gatewayMBps, unit: 'MB/s',
      baseline: put.baselineMBps, baselineName: 'node:http + fsync', target: '≥ 200 MB/s',
    };
    putRow.pass = putRow.value >= 200 && put.gateway.errors === 0;
    if (put.gateway.errors) putRow.note = `${put.gateway.errors} POSTs failed`;
    rows.push(putRow, { name: 'POST PUTCHUNKS 1 MiB, p50', value: put.gateway.p50, unit: 'ms', baseline: put.baseline.p50, baselineName: 'node:http' });

    const peaks: Record<string, number> = {};
    for (const r of actors) {
      const pid = g.pids[r]!;
      const loaded = loadedMax.get(pid) ?? NaN;
      peaks[r] = (memoryOf(pid)?.hwmKb ?? NaN) / 1024;
      rows.push({ name: `RSS ${r} actor, idle`, value: idle[r]! / 1024, unit: 'MiB' });
      rows.push({ name: `RSS ${r} actor, loaded (max sampled)`, value: loaded / 1024, unit: 'MiB', note: `VmHWM ${peaks[r]!.toFixed(1)} MiB` });
    }
    const m = echo.memory.usedMemory;
    const half = m.quarters[1] ?? NaN;
    const end = m.quarters[3] ?? NaN;
    const growth = (end - half) / MiB;
    rows.push({
      name: `Redis used_memory after ${echo.memory.calls.count} ask() calls`, value: end / MiB, unit: 'MiB',
      baseline: m.before / MiB, baselineName: 'before', target: '≤ +2 MiB over the last half',
      pass: echo.memory.calls.count >= 100_000 && growth <= 2,
      note: `quarters ${m.quarters.map((q) => (q / MiB).toFixed(1)).join(' / ')} MiB, 2 s later ${(m.settled / MiB).toFixed(1)} MiB; `
        + `growth over the last half ${growth.toFixed(2)} MiB; jobs kept ${JSON.stringify(echo.memory.retainedJobs)}`,
    });
    raw.rss = { idleKb: idle, loadedMaxKb: Object.fromEntries(actors.map((r) => [r, loadedMax.get(g!.pids[r]!)])), peakMiB: peaks };
  } finally {
    log('stopping the gateway and the private redis-server');
    await g?.stop();
    await redisServer.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`\nsgw bench — node ${process.version}, ${cpus().length} cores, ${seconds.toFixed(0)} s. `
    + `Driver calls: ${IN_FLIGHT} in flight, driver actor concurrency ${ACTOR_CONCURRENCY}; HTTP via autocannon in the bench process.\n\n`);
  printTable(rows);
  writeJson(RESULTS, { date: new Date().toISOString(), node: process.version, cores: cpus().length, seconds, rows, raw });
  process.stdout.write(`\nresults: ${RESULTS}\n`);
  const left = childrenOf(process.pid).filter((c) => !c.args.startsWith('ps '));
  if (left.length) process.stderr.write(`bench: leftover child processes: ${JSON.stringify(left)}\n`);
}

main().then(() => process.exit(0), (err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
