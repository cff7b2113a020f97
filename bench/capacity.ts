// What one request of each kind costs the resources a cluster is sized by (issue 17): CPU of each
// role's processes (/proc/<pid>/stat), Redis commands, Redis CPU and bytes through Redis (INFO), over
// a fixed number of requests after warm-up. The capacity table of docs/benchmarks.md is derived
// from these. Kinds: GET 4 KiB cache hit and miss, PUTCHUNKS of 64 KiB and 1 MiB on the bench
// gateway (one host: 1 MiB chunks pass between its actors through /dev/shm), and 1 MiB again on a
// gateway without /dev/shm (SGW_SHM_DIR=""), whose chunks go through Redis as between hosts.
import { httpLoad } from './load.js';
import { CONNECTIONS, seedMissBlocks, storeHitSet } from './http-get.js';
import { gatewayPostLoad, POSTS_IN_FLIGHT } from './post-chunks.js';
import { startBenchGateway, type BenchGateway } from './gateway.js';
import { countersBetween, readRedisCounters, scriptCalls, topCommands, totalCalls, type RedisCounters } from './redis-counters.js';
import { sleep, ticksOf } from './support.js';
import type { Row } from './report.js';

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
/** Measured requests per kind: each window long enough (≥ ~2 s here) for 10 ms clock ticks. */
const REQUESTS = { hit: 30_000, miss: 10_000, put64k: 4000, put1m: 800 };
const MISS_WARMUP = 2000;
const IDLE_MS = 3000;
/** A safety limit on each measured run; the request counts end them long before. */
const MAX_SECONDS = 120;
/** A typical server NIC, for bytes through Redis. */
const NIC_BYTES_PER_S = 10e9 / 8;

/** Clock ticks (1/100 s) of each process and Redis's counters at one moment. */
interface Reading {
  at: number;
  ticks: Record<string, number>;
  redis: RedisCounters;
}

export interface KindCost {
  kind: string;
  requests: number;
  failed: number;
  inFlight: number;
  seconds: number;
  rate: number;
  /** CPU µs per request of each process of the gateway, by role, and of redis-server. */
  cpuUs: Record<string, number>;
  redisCpuUs: number;
  /** Command executions per request, those inside Lua scripts included; scripts alone. */
  commands: number;
  scripts: number;
  top: { command: string; calls: number; us: number }[];
  bytesIn: number;
  bytesOut: number;
}

/** The gateway's processes, without the bench's own (the load generator). */
function gatewayPids(g: BenchGateway): Record<string, number> {
  return Object.fromEntries(Object.entries(g.cpuPids).filter(([role]) => role !== 'bench'));
}

async function reading(g: BenchGateway): Promise<Reading> {
  const ticks = Object.fromEntries(Object.entries(gatewayPids(g)).map(([role, pid]) => [role, ticksOf(pid)]));
  return { at: performance.now(), ticks, redis: await readRedisCounters(g.redis) };
}

/**
 * Per request (or, with requests = seconds, per second) between two readings; the rate over the
 * load's own `seconds` (the window also holds starting and stopping the load generator).
 */
function costBetween(kind: string, a: Reading, b: Reading, requests: number, failed: number, inFlight: number, seconds = (b.at - a.at) / 1000): KindCost {
  const redis = countersBetween(a.redis, b.redis);
  const cpuUs = Object.fromEntries(Object.keys(a.ticks).map((role) => [role, ((b.ticks[role]! - a.ticks[role]!) * 10_000) / requests]));
  return {
    kind, requests, failed, inFlight, seconds, rate: requests / seconds, cpuUs,
    redisCpuUs: (redis.cpuSeconds * 1e6) / requests,
    commands: totalCalls(redis) / requests,
    scripts: scriptCalls(redis) / requests,
    top: topCommands(redis, 6).map(([command, c]) => ({ command, calls: c.calls / requests, us: c.usec / requests })),
    bytesIn: redis.netInputBytes / requests,
    bytesOut: redis.netOutputBytes / requests,
  };
}

interface Made {
  requests: number;
  failed: number;
  seconds: number;
}

/** Readings around `run`, which says how many requests it made, how many failed and in how long. */
async function measure(kind: string, g: BenchGateway, inFlight: number, run: () => Promise<Made>): Promise<KindCost> {
  const a = await reading(g);
  const r = await run();
  return costBetween(kind, a, await reading(g), r.requests, r.failed, inFlight, r.seconds);
}

async function getCost(kind: string, g: BenchGateway, warmPaths: string[], paths: string[], warmSeconds: number): Promise<KindCost> {
  log(`capacity: ${kind}, warm-up then ${paths.length} requests`);
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: warmSeconds, once: true, paths: warmPaths });
  return measure(kind, g, CONNECTIONS, async () => {
    const l = await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: MAX_SECONDS, once: true, paths });
    return { requests: l.ok + l.failed, failed: l.failed, seconds: l.seconds };
  });
}

async function putCost(kind: string, g: BenchGateway, count: number, chunkBytes: number, fileId: bigint): Promise<KindCost> {
  log(`capacity: ${kind}, warm-up then ${count} requests`);
  const load = gatewayPostLoad(g, count, fileId, chunkBytes);
  try {
    await load.warmUp();
    return await measure(kind, g, POSTS_IN_FLIGHT, async () => {
      const l = await load.run(MAX_SECONDS, count);
      return { requests: l.count, failed: l.errors, seconds: l.seconds };
    });
  } finally {
    load.close();
  }
}

/** n paths taken round and round from a set. */
const repeat = (set: string[], n: number) => Array.from({ length: n }, (_, i) => set[i % set.length]!);

export async function capacityCosts(g: BenchGateway): Promise<{ idle: KindCost; kinds: KindCost[] }> {
  log(`capacity: the gateway idle for ${IDLE_MS / 1000} s (background: heartbeats, blocked workers)`);
  const before = await reading(g);
  await sleep(IDLE_MS);
  const idle = costBetween('idle, per second', before, await reading(g), IDLE_MS / 1000, 0, 0);
  const kinds: KindCost[] = [];
  const hits = await storeHitSet(g, 4096, 0xca9ac1700n);
  kinds.push(await getCost('GET 4 KiB cache hit', g, repeat(hits, 10_000), repeat(hits, REQUESTS.hit), 1));
  const misses = seedMissBlocks(g, 4096, MISS_WARMUP + REQUESTS.miss, 0xca9ac1701n);
  kinds.push(await getCost('GET 4 KiB cache miss', g, misses.slice(0, MISS_WARMUP), misses.slice(MISS_WARMUP), 2));
  kinds.push(await putCost('PUTCHUNKS 64 KiB', g, REQUESTS.put64k, 64 << 10, 0xca9ac1702n));
  kinds.push(await putCost('PUTCHUNKS 1 MiB (via /dev/shm)', g, REQUESTS.put1m, 1 << 20, 0xca9ac1703n));
  log('capacity: a second gateway without /dev/shm (SGW_SHM_DIR=""): its chunks go through Redis, as between hosts');
  const apart = await startBenchGateway({}, undefined, { SGW_SHM_DIR: '' });
  try {
    kinds.push(await putCost('PUTCHUNKS 1 MiB (via Redis)', apart, REQUESTS.put1m, 1 << 20, 0xca9ac1704n));
  } finally {
    await apart.stop();
  }
  return { idle, kinds };
}

const KiB = 1024;
const fmt = (v: number, digits = 1) => v.toFixed(v >= 100 ? 0 : digits);
const DRIVER = /^driver:/;

/** Sum of the driver actors' CPU per request, and the modes that used any. */
function driverCpu(c: KindCost): { total: number; each: string } {
  const roles = Object.entries(c.cpuUs).filter(([r]) => DRIVER.test(r));
  const each = roles.filter(([, v]) => v >= 0.5).map(([r, v]) => `${r} ${fmt(v)}`).join(', ');
  return { total: roles.reduce((a, [, v]) => a + v, 0), each: each || 'none above 0.5 µs' };
}

function kindRows(c: KindCost): Row[] {
  const L = `capacity, ${c.kind}`;
  const saturates = 1e6 / c.redisCpuUs;
  const bytes = c.bytesIn + c.bytesOut;
  // A kind that hardly touches Redis (cache hits) has no saturation point worth printing.
  const atSaturation = c.redisCpuUs < 0.5 ? 'Redis is hardly in its path'
    : `one Redis (≤ 1 core) saturates at ~${Math.round(saturates)} requests/s, when this is ${fmt((bytes * saturates * 8) / 1e9, 2)} Gb/s (in + out; `
      + `${Math.round((Math.max(c.bytesIn, c.bytesOut) * saturates * 100) / NIC_BYTES_PER_S)} % of a 10 Gb/s NIC in its busier direction)`;
  const drivers = driverCpu(c);
  const others = Object.entries(c.cpuUs).filter(([r]) => r !== 'http' && r !== 'redis' && !DRIVER.test(r) && c.cpuUs[r]! >= 0.5);
  return [
    {
      name: `${L}: requests/s while measured`, value: c.rate, unit: '/s',
      note: `${c.requests} requests in ${c.seconds.toFixed(1)} s, ${c.inFlight} in flight, ${c.failed} failed`,
    },
    {
      name: `${L}: http actor CPU per request`, value: c.cpuUs.http ?? NaN, unit: 'µs',
      ...(others.length ? { note: `also ${others.map(([r, v]) => `${r} ${fmt(v)} µs`).join(', ')}` } : {}),
    },
    { name: `${L}: driver actors CPU per request`, value: drivers.total, unit: 'µs', note: drivers.each },
    {
      name: `${L}: Redis CPU per request (INFO cpu)`, value: c.redisCpuUs, unit: 'µs',
      note: `redis-server from /proc: ${fmt(c.cpuUs.redis ?? NaN)} µs; ${atSaturation}`,
    },
    {
      name: `${L}: Redis commands per request`, value: c.commands, unit: '',
      note: `${fmt(c.scripts, 2)} of them scripts (their inner commands counted too); top: ${c.top.map((t) => `${t.command} ${fmt(t.calls, 2)} (${fmt(t.us)} µs)`).join(', ')}`,
    },
    {
      name: `${L}: bytes through Redis per request`, value: bytes / KiB, unit: 'KiB',
      note: `in ${fmt(c.bytesIn / KiB)} KiB, out ${fmt(c.bytesOut / KiB)} KiB`,
    },
  ];
}

export async function capacityBenchmarks(g: BenchGateway): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const { idle, kinds } = await capacityCosts(g);
  const idleRow: Row = {
    name: 'capacity: background of an idle gateway, Redis commands per second', value: idle.commands, unit: '/s',
    note: `Redis CPU ${fmt(idle.redisCpuUs)} µs/s, http actor ${fmt(idle.cpuUs.http ?? NaN)} µs/s, driver actors ${fmt(driverCpu(idle).total)} µs/s, `
      + `${fmt((idle.bytesIn + idle.bytesOut) / KiB)} KiB/s through Redis (with the readings' own INFO replies); counted in the figures per request below`,
  };
  return { rows: [idleRow, ...kinds.flatMap(kindRows)], raw: { idle, kinds } };
}
