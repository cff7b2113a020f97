// GET benchmarks through the gateway's real http actor (the load from bench/load.ts's processes),
// each against a plain Koa server in its own process answering the same number of bytes from memory,
// the two measured in alternated turns (load.ts alternated()).
//   hit   64 KiB (and 4 KiB) blocks stored with PUTCHUNKS and read once, so every measured GET is a
//         cache hit
//   miss  4 KiB blocks, each requested once: every GET goes read -> (serialize) -> cache put
import { alternated, httpLoad, measuredLoad, TURNS, type HttpLoad } from './load.js';
import { Agent } from 'node:http';
import { closedLoop, countBytes, forkBench, type Latency } from './support.js';
import { BenchFile, type BenchGateway } from './gateway.js';
import { ChunkType } from '../proto/messages.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';

export const CONNECTIONS = 64;

export interface GetResult {
  gateway: HttpLoad;
  koa: HttpLoad;
  /** Cores each process used during the measured runs. */
  cpu: Record<string, number>;
  koaCpu: Record<string, number>;
  /** Distinct blocks requested. */
  blocks: number;
  /** The run used every prepared block before its time was up (raise maxBlocks). */
  exhausted?: boolean;
  /** Gateway/Koa rates of each alternated turn; the figures above are the median turn's. */
  ratios: number[];
}

/** Seconds of one side's turn: 2 × `seconds` per side in all, spread over TURNS turns. */
export function turnSeconds(seconds: number): number {
  return (2 * seconds) / TURNS;
}

/**
 * The gateway and a plain Koa server answering `size` bytes from memory (a process of its own),
 * measured in turns over the paths `pathsOf(turn)`.
 */
async function againstKoa(g: BenchGateway, size: number, seconds: number, pathsOf: (turn: number) => string[], once: boolean) {
  const koa = await forkBench('baseline-server', ['koa', String(size)]);
  try {
    const url = `http://127.0.0.1:${koa.info.port as number}`;
    await httpLoad({ url, connections: CONNECTIONS, seconds: 1, paths: pathsOf(0) }); // warm-up
    const side = (target: string, pids: Record<string, number>) => (turn: number) =>
      measuredLoad({ url: target, connections: CONNECTIONS, seconds: turnSeconds(seconds), once, paths: pathsOf(turn) }, pids);
    const r = await alternated(TURNS, side(g.f.url, g.cpuPids), side(url, { koa: koa.pid, bench: process.pid }));
    return { gateway: r.a.load, cpu: r.a.cpu, koa: r.b.load, koaCpu: r.b.cpu, ratios: r.ratios };
  } finally {
    await koa.stop();
  }
}

/** Stores 16 blocks of `size` bytes with PUTCHUNKS and reads each once: their paths, all cache hits from now on. */
export async function storeHitSet(g: BenchGateway, size: number, fileId = 0xcac4e0001n + BigInt(size)): Promise<string[]> {
  const blocks = 16;
  const file = new BenchFile(g, fileId);
  const bytes = Buffer.alloc(size, 0x3c);
  const { blocks: manifest, data } = layOutChunks(Array.from({ length: blocks }, (_, i) => ({
    block: { block_id: BigInt(i), block_version: 1n, chunk_type: ChunkType.BLOCK, logical_offset: BigInt(i * size), logical_len: BigInt(size) },
    bytes,
  })));
  const put = await sendControlPlane(g.f.url, putChunksFields(file.ref, manifest), g.f.ugKey, data, g.f.rgKey);
  if (put.status !== 200 || put.reply?.error_code !== 0) throw new Error(`PUTCHUNKS of the hit set failed: ${put.status} ${put.body.toString().slice(0, 200)}`);
  for (let i = 0; i < blocks; i++) {
    const res = await fetch(file.url(i));
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || !body.equals(bytes)) throw new Error(`warming GET of block ${i}: ${res.status}, ${body.length} bytes`);
  }
  return Array.from({ length: blocks }, (_, i) => file.path(i));
}

export async function cacheHitGets(g: BenchGateway, seconds: number, size = 64 * 1024): Promise<GetResult> {
  const paths = await storeHitSet(g, size);
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 1, paths }); // warm-up
  return { ...(await againstKoa(g, size, seconds, () => paths, false)), blocks: paths.length };
}

/** Puts `count` blocks of `size` bytes in the disk driver's storage, none in the cache: their paths. */
export function seedMissBlocks(g: BenchGateway, size: number, count: number, fileId = 0x3155e0001n + BigInt(size)): string[] {
  const file = new BenchFile(g, fileId);
  file.seedOnDisk(count, Buffer.alloc(size, 0x4d));
  return Array.from({ length: count }, (_, i) => file.path(i));
}

/** Cache misses in turns with Koa: each turn of the gateway's asks blocks of its own, each once. */
export async function cacheMissGets(g: BenchGateway, seconds: number, size = 4096, maxBlocks = 36_000): Promise<GetResult> {
  const warm = 2000;
  const paths = seedMissBlocks(g, size, warm + maxBlocks);
  // Warm-up on blocks of their own, so that every measured GET misses the cache.
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 2, once: true, paths: paths.slice(0, warm) });
  const perTurn = Math.floor(maxBlocks / TURNS);
  const r = await againstKoa(g, size, seconds, (turn) => paths.slice(warm + turn * perTurn, warm + (turn + 1) * perTurn), true);
  const requested = r.gateway.ok + r.gateway.failed;
  return { ...r, blocks: Math.min(perTurn, requested), exhausted: requested >= perTurn };
}

export interface LoneMisses {
  /** Sequential GETs, one in flight: each a cache miss (read → cache). */
  miss: Latency;
  /** Sequential GET /PING on the same kind of connection: the HTTP part alone. */
  ping: Latency;
}

/** One request at a time, so each pays the whole path alone: cache misses, then /PING. */
export async function loneMisses(g: BenchGateway, count = 1000): Promise<LoneMisses> {
  const file = new BenchFile(g, 0x10e3155n);
  file.seedOnDisk(count + 100, Buffer.alloc(4096, 0x4c));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const get = (path: string) => countBytes(`${g.f.url}${path}`, {}, agent).then(() => true);
    const ping = await closedLoop({ inFlight: 1, maxCount: count, maxMs: 30_000, warmup: 100 }, () => get('/PING'));
    // Its own 100 warm-up blocks first: every measured GET is a miss.
    let next = 0;
    const miss = await closedLoop({ inFlight: 1, maxCount: count, maxMs: 30_000, warmup: 100 }, () => get(file.path(next++)));
    return { miss, ping };
  } finally {
    agent.destroy();
  }
}
