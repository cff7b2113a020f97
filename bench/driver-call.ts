// Driver-call round trips, 4 KiB chunks, the worker always in another process:
//   bare   LPUSH a request, a worker BRPOPs it and LPUSHes it back, the client BRPOPs the reply
//   bullmq the same frames as plain BullMQ jobs (Queue.add, a Worker LPUSHes the reply): the
//          least any call that is a BullMQ job costs
//   echo   sgw's Asker -> BullMQ job -> CallServer echoing the chunk -> reply list (machinery only)
//   disk   sgw's Asker -> the gateway's real driver:read actor -> built-in disk driver read_chunk
// plus Redis used_memory over 100k echo calls (it must level off: jobs are removed on completion).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { Asker } from '../queues/ask.js';
import { JobMac } from '../queues/job-mac.js';
import { DriverRequestCodec } from '../proto/messages.js';
import { testRedis } from '../test/support/redis.js';
import { closedLoop, cpuWindow, forkBench, redisUsedMemory, type Latency } from './support.js';
import { BenchFile, type BenchGateway } from './gateway.js';
import { redisAt } from '../queues/redis.js';

const CHUNK = Buffer.alloc(4096, 0xa5);
const TIMEOUT_MS = 5000;
export const IN_FLIGHT = 64;

export interface RoundTrips {
  one: Latency;
  many: Latency;
  /** Cores each process used during the run at IN_FLIGHT. */
  cpu: Record<string, number>;
}

/** Latency with one call in flight, then p50/p99 and rate with IN_FLIGHT. */
async function roundTrips(call: () => Promise<boolean>, seconds: number, pids: Record<string, number>): Promise<RoundTrips> {
  const one = await closedLoop({ inFlight: 1, maxCount: 3000, maxMs: 1500, warmup: 300 }, call);
  await closedLoop({ inFlight: IN_FLIGHT, maxCount: 3000, maxMs: 5000 }, call); // warm-up
  const cpu = cpuWindow(pids);
  const many = await closedLoop({ inFlight: IN_FLIGHT, maxCount: 100_000, maxMs: seconds * 1000 }, call);
  return { one, many, cpu: cpu() };
}

async function workerPids(worker: number): Promise<Record<string, number>> {
  return { worker, redis: (await testRedis()).pid, bench: process.pid };
}

/** The client side of the bare echo: LPUSH requests, one BRPOP loop for the replies. */
class BareEchoClient {
  private readonly out: Redis;
  private readonly blocking: Redis;
  private readonly replyKey = `bench:echo:replies:${randomUUID()}`;
  private readonly header: Buffer;
  private readonly pending = new Map<number, (frame: Buffer) => void>();
  private next = 0;
  private closed = false;
  private readonly loop: Promise<void>;

  /** `send` queues a frame for the worker: LPUSH on requestList by default. */
  constructor(url: string, private readonly requestList: string, private readonly send?: (frame: Buffer) => Promise<unknown>) {
    this.out = new Redis(url);
    this.blocking = new Redis(url);
    const key = Buffer.from(this.replyKey);
    this.header = Buffer.alloc(2 + key.length);
    this.header.writeUInt16BE(key.length, 0);
    key.copy(this.header, 2);
    this.loop = this.drain();
  }

  private async drain(): Promise<void> {
    while (!this.closed) {
      const got = await this.blocking.brpopBuffer(this.replyKey, 1).catch(() => null);
      if (!got) continue;
      const frame = got[1];
      const id = frame.readUInt32BE(this.header.length);
      const done = this.pending.get(id);
      this.pending.delete(id);
      done?.(frame);
    }
  }

  call(payload: Buffer): Promise<Buffer> {
    const id = this.next++ >>> 0;
    const idBuf = Buffer.allocUnsafe(4);
    idBuf.writeUInt32BE(id, 0);
    const frame = Buffer.concat([this.header, idBuf, payload]);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error('bare echo timed out')); }, TIMEOUT_MS);
      this.pending.set(id, (reply) => { clearTimeout(timer); resolve(reply.subarray(this.header.length + 4)); });
      (this.send ? this.send(frame) : this.out.lpush(this.requestList, frame)).catch(reject);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.blocking.disconnect(); // ends the pending BRPOP
    await this.loop;
    this.out.disconnect();
  }
}

export async function bareEcho(redisUrl: string, seconds: number): Promise<RoundTrips> {
  const list = `bench:echo:requests:${randomUUID()}`;
  const worker = await forkBench('echo-worker', ['bare', redisUrl, list]);
  const client = new BareEchoClient(redisUrl, list);
  try {
    return await roundTrips(async () => (await client.call(CHUNK)).length === CHUNK.length, seconds, await workerPids(worker.pid));
  } finally {
    await client.close();
    await worker.stop();
  }
}

/** The bare echo's frames as plain BullMQ jobs: one call, one job (no sgw code on either side). */
export async function bullmqEcho(redisUrl: string, seconds: number): Promise<RoundTrips> {
  const name = `bench-echo-${randomUUID()}`;
  const worker = await forkBench('echo-worker', ['bullmq', redisUrl, name]);
  const queue = new Queue(name, { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), defaultJobOptions: { removeOnComplete: { count: 100 } } });
  const client = new BareEchoClient(redisUrl, name, (frame) => queue.add('echo', { f: frame.toString('base64') }));
  try {
    return await roundTrips(async () => (await client.call(CHUNK)).length === CHUNK.length, seconds, await workerPids(worker.pid));
  } finally {
    await client.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    await worker.stop();
  }
}

export interface MemoryRun {
  calls: Latency;
  /** used_memory in bytes: before, after each quarter of the calls, and 2 s after the last. */
  usedMemory: { before: number; quarters: number[]; settled: number };
  retainedJobs: Record<string, number>;
}

/** The sgw echo: 100k calls watching Redis memory first (they warm up too), then the round trips. */
export async function sgwEcho(redisUrl: string, seconds: number, memoryCalls = 100_000): Promise<{ trips: RoundTrips; memory: MemoryRun }> {
  const gateway = `bench.echo${process.pid}`;
  const worker = await forkBench('echo-worker', ['sgw', redisUrl, gateway, 'read', String(IN_FLIGHT)]);
  const asker = new Asker(redisAt(redisUrl), gateway);
  const redis = new Redis(redisUrl);
  // A realistic request: the DriverRequest a GET of a 4 KiB block sends.
  const request = DriverRequestCodec.encode({
    volume_id: 3n, user_id: 7n, coordinator_id: 0n, file_id: 0xabcn, file_version: 1n, request_type: 1, path: '/bench/echo.dat',
    io_type: 1, io_context: 12345n, block_size: 65536n, block_id: 1n, block_version: 1n, offset: 65536n, len: 65536n,
  });
  const call = async () => {
    const r = await asker.ask('read', { request, chunk: CHUNK }, TIMEOUT_MS);
    return r.rc === 0 && r.chunk?.length === CHUNK.length;
  };
  try {
    await asker.jobCounts('read'); // creates the queue object before the reading
    const before = await redisUsedMemory(redis);
    const quarters: number[] = [];
    const calls = await closedLoop({
      inFlight: IN_FLIGHT, maxCount: memoryCalls, maxMs: 60_000,
      onProgress: { every: memoryCalls / 4, fn: async () => { quarters.push(await redisUsedMemory(redis)); } },
    }, call);
    await new Promise((r) => setTimeout(r, 2000));
    const settled = await redisUsedMemory(redis);
    const retainedJobs = await asker.jobCounts('read');
    const trips = await roundTrips(call, seconds, await workerPids(worker.pid));
    return { trips, memory: { calls, usedMemory: { before, quarters, settled }, retainedJobs } };
  } finally {
    await asker.close();
    redis.disconnect();
    await worker.stop();
  }
}

/** A real driver:read actor of the gateway reading 4 KiB blocks with the built-in disk driver. */
export async function diskDriverCalls(g: BenchGateway, seconds: number): Promise<RoundTrips> {
  const file = new BenchFile(g, 0xd15c0001n);
  const blocks = 256;
  file.seedOnDisk(blocks, CHUNK);
  const requests = Array.from({ length: blocks }, (_, i) => DriverRequestCodec.encode(file.readRequest(i)));
  // A gateway's driver actors run only calls that carry its MAC (queues/job-mac.ts).
  const asker = new Asker(redisAt(g.f.redisUrl), g.f.gatewayKey, JobMac.forGateway(g.f.rgKey, g.f.gatewayKey));
  try {
    return await roundTrips(async () => {
      const r = await asker.ask('read', { request: requests[Math.floor(Math.random() * blocks)]! }, TIMEOUT_MS);
      return r.rc === 0 && r.chunk?.length === CHUNK.length;
    }, seconds, g.cpuPids);
  } finally {
    await asker.close();
  }
}
