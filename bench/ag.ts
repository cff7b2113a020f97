// Acquisition gateway benchmarks, each against a local-file-system baseline measured in the same run:
//   crawl  a 10,000-file tree published by the built-in dataset driver (entries/s), against a
//          plain lstat walk of the same tree
//   GET    64 KiB blocks through the AG, cache miss (every URL once: fresh manifests give fresh
//          block versions) and cache hit, in alternated turns with the run's RG serving its own
//          64 KiB misses and hits (the rows' baselines); pread of the same ranges in the notes
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternated, formatRatios, httpLoad, measuredLoad, TURNS, type Measured } from './load.js';
import { startBenchGateway, type BenchGateway } from './gateway.js';
import { CONNECTIONS, seedMissBlocks, storeHitSet, turnSeconds } from './http-get.js';
import { closedLoop, cutProfiles, formatCpu, profiled, sleep, usPerRequest, type Latency } from './support.js';
import type { Row } from './report.js';
import { DATASET_DRIVER_JS } from '../test/support/gateway.js';
import { stat, fileUrl, type EntryJson } from '../test/support/ag.js';
import { ManifestCodec } from '../proto/messages.js';
import { keys } from '../queues/names.js';
import { testRedis } from '../test/support/redis.js';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';

const DIRS = 100;
const FILES_PER_DIR = 100;
const BLOCK = 64 * 1024;
const BIG_FILES = 4;
const BIG_SIZE = 4 << 20;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

function makeDataset(): string {
  const root = mkdtempSync(join(tmpdir(), 'sgw-bench-dataset-'));
  const small = Buffer.alloc(100, 0x61);
  for (let d = 0; d < DIRS; d++) {
    const dir = join(root, 'tree', `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES_PER_DIR; f++) writeFileSync(join(dir, `f${f}`), small);
  }
  mkdirSync(join(root, 'big'));
  for (let i = 0; i < BIG_FILES; i++) writeFileSync(join(root, 'big', `b${i}`), Buffer.alloc(BIG_SIZE, i + 1));
  return root;
}

/** The baseline crawl: every entry lstat'ed, directories read, nothing else. */
async function walk(root: string): Promise<number> {
  let n = 0;
  const queue = [root];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      const st = await lstat(p);
      n++;
      if (st.isDirectory()) queue.push(p);
    }
  }
  return n;
}

/**
 * When the crawl lease of the volume's AG is taken (performance.now()), watched from before the
 * gateway starts: the crawl may begin before the gateway's other actors are ready.
 */
function crawlStart(volumeId: bigint): { at: Promise<number>; stop(): void } {
  let stopped = false;
  const at = (async () => {
    const redis = new Redis((await testRedis()).url);
    try {
      let ag: string | null = null;
      while (!stopped && !(ag = await redis.get(keys.volumeAg(volumeId)))) await sleep(2);
      while (!stopped && !(await redis.get(keys.crawlLease(volumeId, `ag.${ag}`)))) await sleep(2);
      return performance.now();
    } finally {
      redis.disconnect();
    }
  })();
  return { at, stop: () => { stopped = true; } };
}

async function crawlRate(g: BenchGateway, started: Promise<number>, expected: number): Promise<{ seconds: number; rate: number }> {
  const entriesKey = keys.nsEntries(g.f.volumeId);
  // The clock starts when a crawl actor holds the lease (the crawl's start), not at process start.
  const t0 = await started;
  while ((await g.redis.hlen(entriesKey)) < expected) await sleep(5);
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, rate: expected / seconds };
}

/** pread of the same 64 KiB ranges the GETs ask for, with as many in flight as HTTP connections. */
async function preadBaseline(root: string, seconds: number): Promise<Latency> {
  const files = await Promise.all(Array.from({ length: BIG_FILES }, (_, i) => open(join(root, 'big', `b${i}`), 'r')));
  const perFile = BIG_SIZE / BLOCK;
  try {
    const bufs = Array.from({ length: CONNECTIONS }, () => Buffer.allocUnsafe(BLOCK));
    return await closedLoop({ inFlight: CONNECTIONS, maxCount: 10_000_000, maxMs: seconds * 1000, warmup: 1000 }, async (i) => {
      const { bytesRead } = await files[i % BIG_FILES]!.read(bufs[i % CONNECTIONS]!, 0, BLOCK, (Math.floor(i / BIG_FILES) % perFile) * BLOCK);
      return bytesRead === BLOCK;
    });
  } finally {
    await Promise.all(files.map((f) => f.close()));
  }
}

/** Block URL paths of `manifests` fresh manifests per big file: every one a cache miss. */
async function blockPaths(g: BenchGateway, manifests: number): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < BIG_FILES; i++) {
    const e = (await stat(g.f.url, `/big/b${i}`)) as EntryJson;
    for (let m = 0; m < manifests; m++) {
      const r = await fetch(`${g.f.url}${fileUrl(g.f.volumeId, e)}/manifest.${e.mtime.sec}.${e.mtime.nsec}`);
      const manifest = ManifestCodec.decode(Buffer.from(await r.arrayBuffer()));
      for (const b of manifest.blocks ?? []) paths.push(`${fileUrl(g.f.volumeId, e)}/${b.block_id}.${b.block_version}`);
    }
  }
  // Interleave files so consecutive requests do not all hit one file.
  return paths.map((p, i) => ({ p, k: (i * 7919) % paths.length })).sort((a, b) => a.k - b.k).map((x) => x.p);
}

function getRows(label: string, turns: { a: Measured; b: Measured; ratios: number[] }, pread: Latency, min: number): Row[] {
  const { load, cpu } = turns.a;
  const rg = turns.b;
  return [{
    name: `AG GET 64 KiB ${label}, req/s (${CONNECTIONS} conns)`, value: load.rate, unit: '/s',
    baseline: rg.load.rate, baselineName: `RG 64 KiB ${label}`, target: `ratio ≥ ${min}`, pass: load.rate / rg.load.rate >= min && load.failed === 0 && rg.load.failed === 0,
    note: `AG/RG in ${turns.ratios.length} alternated turns: ${formatRatios(turns.ratios)} (the median turn's figures); p99 ${load.p99.toFixed(1)} ms; `
      + `${load.failed ? `${load.failed} failed ${JSON.stringify(load.statuses)}; ` : ''}CPU cores: ${formatCpu(cpu)}, `
      + `load generator ${load.generatorCores} (RG turn: ${rg.load.generatorCores}); fs pread of the same ranges ${Math.round(pread.rate)}/s`,
  }, {
    name: `AG GET 64 KiB ${label}, http actor CPU per request`, value: usPerRequest(cpu.http, load.rate), unit: 'µs',
    baseline: usPerRequest(rg.cpu.http, rg.load.rate), baselineName: 'RG http actor',
    note: `driver:read ${usPerRequest(cpu['driver:read'], load.rate).toFixed(0)} µs (RG ${usPerRequest(rg.cpu['driver:read'], rg.load.rate).toFixed(0)} µs); `
      + `Redis ${usPerRequest(cpu.redis, load.rate).toFixed(0)} µs (RG ${usPerRequest(rg.cpu.redis, rg.load.rate).toFixed(0)} µs)`,
  }];
}

/** RG 64 KiB blocks nobody asked for yet, per alternated turn of the misses (more than a turn can use here). */
const RG_MISSES_PER_TURN = 4000;

/**
 * The crawl against an lstat walk; then the AG's 64 KiB misses and hits, each in turns with the
 * same requests to `rg`, the run's RG (its misses on blocks its disk driver holds).
 */
export async function agBenchmarks(seconds: number, rg: BenchGateway): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  log(`AG: writing a dataset of ${DIRS * FILES_PER_DIR} small files and ${BIG_FILES} × ${BIG_SIZE >> 20} MiB files`);
  const root = makeDataset();
  const expected = DIRS * FILES_PER_DIR + DIRS + 1 + 1 + BIG_FILES; // files, their dirs, /tree, /big, big files
  let g: BenchGateway | null = null;
  try {
    const w0 = performance.now();
    const walked = await walk(root);
    const walkRate = walked / ((performance.now() - w0) / 1000);
    log('AG: starting the gateway and timing its first crawl');
    const volumeId = BigInt(randomBytes(4).readUInt32BE()) + 100n;
    const start = crawlStart(volumeId);
    try {
      g = await profiled(() => startBenchGateway({
        type: 'AG', volumeId, driverSource: `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n`,
        driverConfig: { DATASET_DIR: root, RESCAN_MS: 3_600_000 },
      }, ['http', 'driver:read']));
    } catch (err) {
      start.stop();
      throw err;
    }
    const crawl = await crawlRate(g, start.at, expected);
    const rows: Row[] = [{
      name: `AG crawl, entries/s (${expected} entries)`, value: crawl.rate, unit: '/s', baseline: walkRate, baselineName: 'lstat walk',
      target: 'ratio ≥ 0.5', pass: crawl.rate / walkRate >= 0.5, note: `${crawl.seconds.toFixed(1)} s for the whole tree`,
    }];
    const base = await preadBaseline(root, seconds);
    log('AG: GET cache misses (fresh manifests), then cache hits, in turns with the RG\'s');
    const misses = await blockPaths(g, 60);
    const rgHits = await storeHitSet(rg, BLOCK);
    const rgMisses = seedMissBlocks(rg, BLOCK, TURNS * RG_MISSES_PER_TURN + 500);
    // Warm-up of the RG's miss path on blocks of its own (the last ones), the AG's having crawled.
    await httpLoad({ url: rg.f.url, connections: CONNECTIONS, seconds: 2, once: true, paths: rgMisses.slice(TURNS * RG_MISSES_PER_TURN) });
    const agMissesPerTurn = Math.floor(misses.length / TURNS);
    const agGateway = g;
    const actors = Object.values(g.pids);
    const side = (gw: BenchGateway, pathsOf: (turn: number) => string[], once: boolean) => async (turn: number) => {
      cutProfiles(actors); // with SGW_BENCH_PROFILE, each measured run is a profile window of its own
      const m = await measuredLoad({ url: gw.f.url, connections: CONNECTIONS, seconds: turnSeconds(seconds), once, paths: pathsOf(turn) }, gw.cpuPids);
      cutProfiles(actors);
      return m;
    };
    const miss = await alternated(TURNS,
      side(agGateway, (t) => misses.slice(t * agMissesPerTurn, (t + 1) * agMissesPerTurn), true),
      side(rg, (t) => rgMisses.slice(t * RG_MISSES_PER_TURN, (t + 1) * RG_MISSES_PER_TURN), true));
    rows.push(...getRows('cache miss', miss, base, 0.5));
    const hot = misses.slice(0, 64);
    await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 1, paths: hot }); // warm-up
    await httpLoad({ url: rg.f.url, connections: CONNECTIONS, seconds: 1, paths: rgHits });
    const hit = await alternated(TURNS, side(agGateway, () => hot, false), side(rg, () => rgHits, false));
    rows.push(...getRows('cache hit', hit, base, 0.8));
    return { rows, raw: { crawl, walkRate, miss, hit, pread: base, missUrls: misses.length } };
  } finally {
    await g?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
