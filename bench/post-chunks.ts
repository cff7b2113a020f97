// POST PUTCHUNKS of 1 MiB blocks through the gateway (multipart -> signature and hash checks ->
// nonce -> write actor -> disk driver, fsync -> signed Reply), against a plain node:http server
// storing the same bodies the same way. Requests are signed up front, each with its own nonce
// (the gateway refuses replays); the 1 MiB data plane is shared and written beside each head.
// Request i writes a new version (i + 1) of block i % 64, as a Syndicate writer writes new
// versions: chunks are immutable, so the disk driver would write a rewritten chunk only once. The
// bench removes the chunk written BLOCKS requests earlier, for the gateway and the baseline alike,
// so the store stays at 64 chunks (its page cache does not grow into memory the VM never touched).
import { request as httpRequest, Agent } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ChunkType, ReplyCodec, RequestCodec, type Request } from '../proto/messages.js';
import { signMessage } from '../proto/signature.js';
import { encodeMultipart, layOutChunks, putChunksFields, randomNonce } from '../http/rg-client.js';
import { closedLoop, cpuWindow, forkBench, MiB, type Latency } from './support.js';
import { BenchFile, type BenchGateway } from './gateway.js';

export const POSTS_IN_FLIGHT = 8;
export const CHUNK_BYTES = MiB;
/**
 * Load before the measured run (WARMUP requests or WARMUP_MS, whichever ends first): 4 s, as a
 * gateway that has just started would see. Both actors need ~20-35% more CPU per request in the
 * first ~3-6 s than later (measured 2026-12-03 and 2026-12-05: http actor 4.4 → 3.2 ms, write
 * actor 4.0 → 2.7 ms per 1 MiB request); 15 s of warm-up used to hide that.
 */
export const WARMUP = 4000;
export const WARMUP_MS = 4_000;
/** Blocks the bench rotates over, and how many requests later it removes a chunk. */
const BLOCKS = 64;

/** Where the disk driver stores chunk `i` of the bench (request_to_storage_path). */
export function benchChunkPath(storageDir: string, volumeId: bigint, fileId: bigint, i: number): string {
  return join(storageDir, String(volumeId), fileId.toString(16).toUpperCase(), String(i % BLOCKS), String(i + 1));
}

export interface PostResult {
  gateway: Latency;
  baseline: Latency;
  /** Chunk bytes per second, in MB (10^6 bytes). */
  gatewayMBps: number;
  baselineMBps: number;
  /** Cores each process used during the measured runs. */
  cpu: Record<string, number>;
  baselineCpu: Record<string, number>;
}

export interface Prepared {
  heads: Buffer[];
  tail: Buffer;
  data: Buffer;
  contentType: string;
}

/**
 * Signs `count` PUTCHUNKS requests for one block each (64 rotating block ids, 1 MiB unless
 * `chunkBytes` says otherwise): a new version each, or, with `rewrite`, version 1 of those 64 again
 * and again (for back-ends that overwrite).
 */
export function prepare(file: BenchFile, count: number, rewrite = false, chunkBytes = CHUNK_BYTES): Prepared {
  const data = randomBytes(chunkBytes);
  const [block] = layOutChunks([{
    block: { block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK, logical_offset: 0n, logical_len: BigInt(chunkBytes) },
    bytes: data,
  }]).blocks;
  const boundary = `------------------------${randomBytes(12).toString('hex')}`;
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let contentType = '';
  const heads: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const fields = putChunksFields(file.ref, [{ ...block!, block_id: BigInt(i % BLOCKS), block_version: rewrite ? 1n : BigInt(i + 1) }]);
    const request: Request = { ...fields, message_nonce: randomNonce(), signature: '' };
    const { bytes } = signMessage(request, RequestCodec.encode, file.g.f.ugKey);
    // The data-plane part left empty: its bytes go between this head and the closing tail.
    const mp = encodeMultipart([{ name: 'control-plane', data: bytes }, { name: 'data-plane', data: new Uint8Array(0) }], boundary);
    contentType = mp.contentType;
    heads.push(mp.body.subarray(0, mp.body.length - tail.length));
  }
  return { heads, tail, data, contentType };
}

function post(url: URL, agent: Agent, p: Prepared, i: number): Promise<{ status: number; body: Buffer }> {
  const head = p.heads[i]!;
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname, port: url.port, path: '/', method: 'POST', agent,
      headers: { 'Content-Type': p.contentType, 'Content-Length': head.length + p.data.length + p.tail.length },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.write(head);
    req.write(p.data);
    req.end(p.tail);
  });
}

/** Signed PUTCHUNKS sent to one server, warmed up once and then measured in runs (one or several slices). */
export class PostLoad {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: POSTS_IN_FLIGHT });
  private readonly target: URL;
  private next = 0; // every request is sent once: a nonce must never be replayed

  /** `chunkPath(i)`: where request i's chunk is stored, removed BLOCKS requests later (none: kept). */
  constructor(
    url: string, private readonly p: Prepared, private readonly pids: Record<string, number>, private readonly ok: (r: { status: number; body: Buffer }) => boolean,
    private readonly chunkPath?: (i: number) => string,
  ) {
    this.target = new URL(url);
  }

  private readonly op = async () => {
    const i = this.next++;
    if (i >= this.p.heads.length) throw new Error('out of signed requests');
    const good = this.ok(await post(this.target, this.agent, this.p, i));
    if (this.chunkPath && i >= BLOCKS) await rm(this.chunkPath(i - BLOCKS), { force: true });
    return good;
  };

  async warmUp(): Promise<void> {
    await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount: WARMUP, maxMs: WARMUP_MS }, this.op);
  }

  /** Sends requests for `seconds`, or until `count` of them (at most what is left) were sent. */
  async run(seconds: number, count = Infinity): Promise<Latency & { cpu: Record<string, number> }> {
    const cpu = cpuWindow(this.pids);
    const maxCount = Math.min(count, this.p.heads.length - this.next);
    const measured = await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount, maxMs: seconds * 1000 }, this.op);
    return { ...measured, cpu: cpu() };
  }

  close(): void {
    this.agent.destroy();
  }
}

export async function load(
  url: string, p: Prepared, seconds: number, pids: Record<string, number>, ok: (r: { status: number; body: Buffer }) => boolean, chunkPath?: (i: number) => string,
): Promise<Latency & { cpu: Record<string, number> }> {
  const l = new PostLoad(url, p, pids, ok, chunkPath);
  try {
    await l.warmUp();
    return await l.run(seconds);
  } finally {
    l.close();
  }
}

/** Chunk bytes stored per second, in MB (10^6 bytes). */
export const chunkMBps = (l: Pick<Latency, 'count' | 'errors' | 'seconds'>) => ((l.count - l.errors) * CHUNK_BYTES) / l.seconds / 1e6;
const replyOk = (r: { status: number; body: Buffer }) => r.status === 200 && ReplyCodec.decode(r.body).error_code === 0;

/** Where a gateway's disk driver stores request i's chunk of the bench file. */
const gatewayChunks = (g: Pick<BenchGateway, 'f'>, file: BenchFile) => (i: number) => benchChunkPath(g.f.storageDir, file.ref.volume_id, file.ref.file_id, i);

/**
 * A PostLoad on a gateway's PUTCHUNKS (disk driver), with `maxRequests` signed requests beyond its
 * warm-up; `g` may be any RG folder with the processes to read CPU from (the UG volume's RG).
 */
export function gatewayPostLoad(
  g: Pick<BenchGateway, 'f' | 'cpuPids'>, maxRequests: number, fileId = 0x90570001n, chunkBytes = CHUNK_BYTES,
): PostLoad {
  const file = new BenchFile(g, fileId);
  return new PostLoad(g.f.url, prepare(file, maxRequests + WARMUP, false, chunkBytes), g.cpuPids, replyOk, gatewayChunks(g, file));
}

export async function putChunks(g: BenchGateway, seconds: number, maxRequests = 1600): Promise<PostResult> {
  const file = new BenchFile(g, 0x90570001n);
  const p = prepare(file, maxRequests + WARMUP);
  const gateway = await load(g.f.url, p, seconds, g.cpuPids, replyOk, gatewayChunks(g, file));
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-sink-'));
  const sink = await forkBench('baseline-server', ['disk', dir]);
  let baseline: Latency & { cpu: Record<string, number> };
  try {
    baseline = await load(`http://127.0.0.1:${sink.info.port as number}`, p, seconds, { sink: sink.pid, bench: process.pid }, (r) => r.status === 200,
      (i) => benchChunkPath(dir, 1n, 1n, i));
  } finally {
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { gateway, baseline, gatewayMBps: chunkMBps(gateway), baselineMBps: chunkMBps(baseline), cpu: gateway.cpu, baselineCpu: baseline.cpu };
}
