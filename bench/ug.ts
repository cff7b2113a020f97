// User gateway benchmark: a 64 MiB file with 1 MiB blocks written and read through a UG and one
// RG (built-in disk driver, which fsyncs every chunk), each figure next to a baseline of the same
// run:
//   write                      POST PUTCHUNKS of 1 MiB to the same RG, in alternated turns
//   read, UG cache cold        the RG serving the same 1 MiB blocks from its cache, as many in
//                              flight as the UG fetches (ug.parallel_blocks), to a plain client,
//                              timed in the same rounds; the UG is a running one that has not read
//                              the file (a restarted UG is shown too, without a target)
//   read, UG cache warm        plain Koa answering the same 64 MiB from memory
// Every transfer reports the CPU each process spent per MiB. Every transfer, the UG's and the
// baselines', is made by node:http in one small client process of its own
// (bench/transfer-client.ts; fetch cost the client more CPU than some actors).
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { testRedis } from '../test/support/redis.js';
import { startUgVolume, type RunningVolume } from '../test/support/ug.js';
import { UG_TEST_TOKEN } from '../test/support/gateway.js';
import { ManifestCodec } from '../proto/messages.js';
import { formatBlockUrl, formatManifestUrl } from '../http/data-url.js';
import type { Row } from './report.js';
import { childrenOf, cpuWindow, cutProfiles, forkBench, formatCpu, profiled, putStream, type Child, type Latency } from './support.js';
import { alternated, formatRatios, TURNS } from './load.js';
import { chunkMBps, gatewayPostLoad, WARMUP_MS } from './post-chunks.js';
import type { TransferTask } from './transfer-client.js';

export const SIZE = 64 << 20;
const BLOCK = 1 << 20;
const PARALLEL_BLOCKS = 8;
const MB = 1e6;
/** Each write and read is timed this many times, the best counting (one takes a fraction of a second). */
const ROUNDS = 3;
/** Warm reads are short (~0.1 s each): more rounds, alternating with their baseline. */
const WARM_ROUNDS = 5;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

/**
 * The UG and RG of the bench. `ug` gives both caches' memory tiers room for its whole file (the
 * RG's hits are the cold read's baseline); `ug1g` runs with the default cache sizes.
 */
export function startBenchVolume(redis: Redis, o: { redisUrl?: string; memoryTierBytes?: number } = {}): Promise<RunningVolume> {
  const limits = { call_timeout_ms: 15_000, request_timeout_ms: 120_000, max_upload_bytes: 32 << 20 };
  const cache = { dir: 'cache', max_bytes: 1 << 30, memory_bytes: o.memoryTierBytes ?? 128 << 20 };
  return profiled(() => startUgVolume(redis, {
    rgs: 1, blockSize: BLOCK, ...(o.redisUrl ? { redisUrl: o.redisUrl } : {}),
    ugConfig: { cache, limits, ug: { token: UG_TEST_TOKEN, batch_bytes: 8 << 20, parallel_blocks: PARALLEL_BLOCKS } },
    rgConfig: { cache, limits },
  }));
}

/** PUT a body to the UG's application API, streamed. */
export function putFile(v: RunningVolume, path: string, body: NodeJS.ReadableStream): Promise<void> {
  return putStream(`${v.client.url}/FILES${path}`, { Authorization: `Bearer ${v.client.token}` }, body);
}

/** The client of the UG benchmarks' transfers, a process of its own (bench/transfer-client.ts). */
class TransferClient {
  private constructor(private readonly child: Child) {}

  static async start(): Promise<TransferClient> {
    return new TransferClient(await forkBench('transfer-client', []));
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Bytes received (GETs) or sent (a PUT). */
  private run(task: TransferTask): Promise<number> {
    return new Promise((resolve, reject) => {
      this.child.proc.once('message', (m: { bytes?: number; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.bytes ?? 0)));
      this.child.proc.send({ task });
    });
  }

  /** GETs every URL, `inFlight` at a time. */
  read(urls: string[], inFlight = 1, headers: Record<string, string> = {}): Promise<number> {
    return this.run({ get: { urls, inFlight, headers } });
  }

  /** A file of the volume, whole, through the UG's application API. */
  readFile(v: RunningVolume, path: string): Promise<number> {
    return this.read([`${v.client.url}/FILES${path}`], 1, ugAuth(v));
  }

  /** A local file written to the volume through the UG's application API, streamed in blocks. */
  writeFile(v: RunningVolume, path: string, src: string): Promise<number> {
    return this.run({ put: { url: `${v.client.url}/FILES${path}`, headers: ugAuth(v), file: src, chunkBytes: BLOCK } });
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}

const ugAuth = (v: RunningVolume) => ({ Authorization: `Bearer ${v.client.token}` });

/** The actor processes of the volume's gateways ("ug http", "rg driver:write", ...), Redis and this bench. */
export function volumePids(v: RunningVolume, redisPid: number): Record<string, number> {
  const pids: Record<string, number> = { redis: redisPid, bench: process.pid };
  const add = (prefix: string, supervisor: number) => {
    for (const c of childrenOf(supervisor)) {
      const role = / actor (\S+)/.exec(c.args)?.[1];
      if (role) pids[`${prefix} ${role}`] = c.pid;
    }
  };
  add('ug', v.ugProc.proc.pid!);
  v.rgProcs.forEach((p, i) => add(v.rgProcs.length > 1 ? `rg${i + 1}` : 'rg', p.proc.pid!));
  return pids;
}

export interface Timed {
  seconds: number;
  /** CPU milliseconds each process spent per MiB moved. */
  cpuMsPerMiB: Record<string, number>;
}

export async function timed(pids: Record<string, number>, bytes: number, fn: () => Promise<unknown>): Promise<Timed> {
  // The gateways' actors (started profiled); not this bench, Redis or a baseline server.
  const actors = Object.entries(pids).filter(([k]) => /^(ug|rg\d*) /.test(k)).map(([, pid]) => pid);
  cutProfiles(actors);
  const cpu = cpuWindow(pids);
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cores = cpu();
  cutProfiles(actors);
  const perMiB = (c: number) => Math.round(((c * seconds * 1000) / (bytes / (1 << 20))) * 100) / 100;
  return { seconds, cpuMsPerMiB: Object.fromEntries(Object.entries(cores).map(([k, c]) => [k, perMiB(c)])) };
}

const fastestOf = (timings: Timed[]): Timed => timings.reduce((a, b) => (b.seconds < a.seconds ? b : a));

/** The best of `rounds` timings. */
async function best(rounds: number, run: () => Promise<Timed>): Promise<Timed> {
  const timings: Timed[] = [];
  for (let i = 0; i < rounds; i++) timings.push(await run());
  return fastestOf(timings);
}

/** PUT a local file through the UG; the seconds it took. */
export async function writeThrough(v: RunningVolume, path: string, src: string): Promise<number> {
  const t0 = performance.now();
  await putFile(v, path, createReadStream(src, { highWaterMark: BLOCK }));
  return (performance.now() - t0) / 1000;
}

const mbps = (t: Timed, bytes = SIZE) => bytes / MB / t.seconds;
export const cpuNote = (t: Timed) => `CPU ms per MiB: ${formatCpu(t.cpuMsPerMiB)}`;

/** Paths of the file's blocks on the RG, from its manifest there (the UG wrote it: no serialize). */
async function rgBlockUrls(v: RunningVolume, path: string): Promise<string[]> {
  const res = await v.client.stat(path);
  const e = res.json<{ entry: { file_id: string; file_version: string; manifest_mtime: { sec: string; nsec: number } } }>().entry;
  const rg = v.rgs[0]!;
  const addr = { volume_id: rg.volumeId, fs_path: path, file_id: BigInt(`0x${e.file_id}`), file_version: BigInt(e.file_version) };
  const m = await fetch(formatManifestUrl(rg.url, { ...addr, mtime_sec: BigInt(e.manifest_mtime.sec), mtime_nsec: e.manifest_mtime.nsec }));
  if (m.status !== 200) throw new Error(`manifest of ${path} from the RG: ${m.status}`);
  const manifest = ManifestCodec.decode(Buffer.from(await m.arrayBuffer()));
  return (manifest.blocks ?? []).map((b) => formatBlockUrl(rg.url, { ...addr, block_id: b.block_id, block_version: b.block_version }));
}

/** Files a UG write turn writes (~1-2 s here). */
const FILES_PER_TURN = 4;

interface WriteTurns {
  /** The UG's writes and the RG's own PUTCHUNKS in the turn whose ratio is the median. */
  ug: Timed;
  put: Latency & { cpu: Record<string, number> };
  ratios: number[];
  /** The file left in the volume (the others written were deleted). */
  kept: string;
}

/**
 * The UG's writes against POST PUTCHUNKS of 1 MiB on the UG volume's own RG, in alternated turns
 * after 4 s of warm-up each (the PUTCHUNKS row's warm-up): a turn times FILES_PER_TURN new files
 * written through the UG, then as long of PUTCHUNKS. Like PUTCHUNKS, which removes its chunks as
 * it goes, the UG deletes what a turn wrote before the next (untimed), so neither side's store,
 * nor the page cache behind it, grows through the turns.
 */
async function writeTurns(v: RunningVolume, client: TransferClient, pids: () => Record<string, number>, src: string): Promise<WriteTurns> {
  let n = 0;
  const written: string[] = [];
  const writeFiles = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const path = `/bench/w-${++n}.bin`;
      const bytes = await client.writeFile(v, path, src);
      if (bytes !== SIZE) throw new Error(`${bytes} bytes written, the file has ${SIZE}`);
      written.push(path);
    }
  };
  const dropWritten = async (keep = 0) => {
    while (written.length > keep) {
      const gone = await v.client.rm(written.shift()!);
      if (gone.status !== 200) throw new Error(`DELETE through the UG: ${gone.status} ${gone.body.toString()}`);
    }
  };
  log(`UG: write 64 MiB files, ${TURNS} turns against POST PUTCHUNKS of 1 MiB on the same RG, each after ${WARMUP_MS / 1000} s of warm-up`);
  const warmUntil = performance.now() + WARMUP_MS;
  while (performance.now() < warmUntil) await writeFiles(1);
  await dropWritten();
  const put = gatewayPostLoad({ f: v.rgs[0]!, cpuPids: pids() }, 2000);
  try {
    await put.warmUp();
    let ugSeconds = 1;
    const turns = await alternated(TURNS, async () => {
      const t = await timed(pids(), FILES_PER_TURN * SIZE, () => writeFiles(FILES_PER_TURN));
      ugSeconds = t.seconds;
      return { t, mbps: mbps(t, FILES_PER_TURN * SIZE) };
    }, async () => {
      // As long as the UG's turn took (its files dropped first, untimed).
      await dropWritten(1);
      const p = await put.run(ugSeconds);
      return { p, mbps: chunkMBps(p) };
    }, (side) => side.mbps);
    await dropWritten(1);
    return { ug: turns.a.t, put: turns.b.p, ratios: turns.ratios, kept: written[0]! };
  } finally {
    put.close();
  }
}

export async function ugBenchmarks(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-ug-'));
  const src = join(dir, 'src.bin');
  writeFileSync(src, randomBytes(SIZE));
  const redisServer = await testRedis();
  const redis = new Redis(redisServer.url);
  let v: RunningVolume | null = null;
  let transfers: TransferClient | null = null;
  let path = '/bench/big.bin';
  try {
    log('UG: starting a UG and one RG (1 MiB blocks)');
    v = await startBenchVolume(redis);
    const running = v;
    const client = transfers = await TransferClient.start();
    const pids = () => ({ ...volumePids(running, redisServer.pid), client: client.pid });
    const check = (n: number) => { if (n !== SIZE) throw new Error(`${n} bytes moved, the file has ${SIZE}`); };
    const turns = await writeTurns(running, client, pids, src);
    const write = turns.ug;
    path = turns.kept;
    log('UG: read 64 MiB, UG and RG caches cold');
    const coldBoth = await timed(pids(), SIZE, async () => check(await client.readFile(running, path)));
    // A running UG reading a file it has not cached, from an RG that has: each round writes a new
    // version, GETs its blocks from the RG once (into the RG's cache), then times the RG serving
    // them (the baseline) and the UG reading the file, one after the other.
    log(`UG: read 64 MiB, UG cache cold, RG cache warm, against the RG's 1 MiB cache hits (${PARALLEL_BLOCKS} in flight); ${ROUNDS} rounds`);
    const fresh = '/bench/unread.bin';
    const rounds: { rg: Timed; cold: Timed }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await client.writeFile(running, fresh, src);
      const urls = await rgBlockUrls(running, fresh);
      const rgHits = async () => check(await client.read(urls, PARALLEL_BLOCKS));
      await rgHits();
      const rg = await timed(pids(), SIZE, rgHits);
      rounds.push({ rg, cold: await timed(pids(), SIZE, async () => check(await client.readFile(running, fresh))) });
    }
    const cold = fastestOf(rounds.map((r) => r.cold));
    const rg = fastestOf(rounds.map((r) => r.rg));
    // A restarted UG also pays the first touch of every page its cache fills (its heap is new).
    log(`UG: read 64 MiB, UG restarted with an empty cache, RG cache warm; ${ROUNDS} rounds`);
    const restarted = await best(ROUNDS, async () => {
      await profiled(() => running.restartUg({ dropCache: true }));
      return timed(pids(), SIZE, async () => check(await client.readFile(running, fresh)));
    });
    // Warm reads and their baseline alternate, round by round: the client is most of what a
    // 64 MiB transfer from memory costs, and its cost per MiB moves as its heap settles, so
    // timing all of one side first measured the client's state instead of the servers.
    log(`UG: read 64 MiB, UG cache warm, alternating with plain Koa answering 64 MiB from memory; ${WARM_ROUNDS} rounds each`);
    const koaServer = await forkBench('baseline-server', ['koa', String(SIZE)]);
    const warmRounds: Timed[] = [];
    const koaRounds: Timed[] = [];
    try {
      const url = `http://127.0.0.1:${koaServer.info.port as number}/`;
      for (let i = 0; i < WARM_ROUNDS; i++) {
        warmRounds.push(await timed(pids(), SIZE, async () => check(await client.readFile(running, fresh))));
        koaRounds.push(await timed({ koa: koaServer.pid, client: client.pid, bench: process.pid }, SIZE, async () => check(await client.read([url]))));
      }
    } finally {
      await koaServer.stop();
    }
    const warm = fastestOf(warmRounds);
    const koa = fastestOf(koaRounds);
    const putMBps = chunkMBps(turns.put);
    const write64: Row = {
      name: 'UG write 64 MiB, 1 MiB blocks, 1 RG', value: mbps(write, FILES_PER_TURN * SIZE), unit: 'MB/s',
      baseline: putMBps, baselineName: 'POST PUTCHUNKS 1 MiB to the same RG', target: 'ratio ≥ 0.7', pass: mbps(write, FILES_PER_TURN * SIZE) / putMBps >= 0.7,
      note: `${FILES_PER_TURN} files per turn, turns ${formatRatios(turns.ratios)}, each side after ${WARMUP_MS / 1000} s of warm-up; the RG's disk driver fsyncs every chunk; ${cpuNote(write)}; baseline CPU cores: ${formatCpu(turns.put.cpu)}`,
    };
    const rgRate = mbps(rg);
    const rows: Row[] = [
      write64,
      { name: 'UG read 64 MiB, UG and RG caches cold', value: mbps(coldBoth), unit: 'MB/s', note: `every block read from the RG's disk driver; ${cpuNote(coldBoth)}` },
      {
        name: 'UG read 64 MiB, UG cache cold', value: mbps(cold), unit: 'MB/s', baseline: rgRate, baselineName: `RG 1 MiB cache hits, ${PARALLEL_BLOCKS} in flight`,
        target: 'ratio ≥ 0.7', pass: mbps(cold) / rgRate >= 0.7,
        note: `a running UG, a file it has not read; best of ${ROUNDS}, each round timing the RG then the UG; ${cpuNote(cold)}; baseline ${cpuNote(rg)}`,
      },
      {
        name: 'UG read 64 MiB, UG restarted with an empty cache', value: mbps(restarted), unit: 'MB/s', baseline: rgRate, baselineName: `RG 1 MiB cache hits, ${PARALLEL_BLOCKS} in flight`,
        note: `best of ${ROUNDS}; ${cpuNote(restarted)}`,
      },
      {
        name: 'UG read 64 MiB, UG cache warm', value: mbps(warm), unit: 'MB/s', baseline: mbps(koa), baselineName: 'plain Koa, 64 MiB from memory',
        target: 'ratio ≥ 0.8', pass: mbps(warm) / mbps(koa) >= 0.8,
        note: `best of ${WARM_ROUNDS}, alternating with the baseline; ${cpuNote(warm)}; baseline ${cpuNote(koa)}`,
      },
    ];
    return { rows, raw: { write, put: turns.put, writeRatios: turns.ratios, coldBoth, cold, restarted, warm, rg, koa, size: SIZE, block: BLOCK } };
  } finally {
    await transfers?.stop();
    await v?.stop();
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}
