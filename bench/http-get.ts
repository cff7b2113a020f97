// GET benchmarks through the gateway's real http actor (the load from bench/load.ts's processes),
// each against a plain Koa server in its own process answering the same number of bytes from memory.
//   hit   64 KiB (and 4 KiB) blocks stored with PUTCHUNKS and read once, so every measured GET is a
//         cache hit
//   miss  4 KiB blocks, each requested once: every GET goes read -> (serialize) -> cache put
import { httpLoad, type HttpLoad } from './load.js';
import { Agent } from 'node:http';
import { closedLoop, countBytes, cpuWindow, forkBench, type Latency } from './support.js';
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
}

async function koaBaseline(size: number, seconds: number, paths: string[]): Promise<{ koa: HttpLoad; koaCpu: Record<string, number> }> {
  const koa = await forkBench('baseline-server', ['koa', String(size)]);
  try {
    const url = `http://127.0.0.1:${koa.info.port as number}`;
    await httpLoad({ url, connections: CONNECTIONS, seconds: 1, paths }); // warm-up
    const cpu = cpuWindow({ koa: koa.pid, bench: process.pid });
    const load = await httpLoad({ url, connections: CONNECTIONS, seconds, paths });
    return { koa: load, koaCpu: cpu() };
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
  const blocks = paths.length;
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 1, paths }); // warm-up
  const cpu = cpuWindow(g.cpuPids);
  const gateway = await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds, paths });
  return { gateway, cpu: cpu(), ...(await koaBaseline(size, seconds, paths)), blocks };
}

/** Puts `count` blocks of `size` bytes in the disk driver's storage, none in the cache: their paths. */
export function seedMissBlocks(g: BenchGateway, size: number, count: number, fileId = 0x3155e0001n + BigInt(size)): string[] {
  const file = new BenchFile(g, fileId);
  file.seedOnDisk(count, Buffer.alloc(size, 0x4d));
  return Array.from({ length: count }, (_, i) => file.path(i));
}

export async function cacheMissGets(g: BenchGateway, seconds: number, size = 4096, maxBlocks = 24_000): Promise<GetResult> {
  const warm = 2000;
  const paths = seedMissBlocks(g, size, warm + maxBlocks);
  // Warm-up on blocks of their own, so that every measured GET misses the cache.
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 2, once: true, paths: paths.slice(0, warm) });
  const cpu = cpuWindow(g.cpuPids);
  const gateway = await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds, once: true, paths: paths.slice(warm) });
  const gatewayCpu = cpu();
  const baseline = await koaBaseline(size, seconds, paths.slice(warm));
  const requested = gateway.ok + gateway.failed;
  return { gateway, cpu: gatewayCpu, ...baseline, blocks: Math.min(maxBlocks, requested), exhausted: requested >= maxBlocks };
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
