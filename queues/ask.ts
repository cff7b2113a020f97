// The ask/reply protocol every actor uses. A call is a BullMQ job on "<gateway>.<mode>" (visible
// in a Bull dashboard); its reply is one binary element pushed onto the asking instance's own
// result list, which the asker drains with batched BLMPOP. Measured here, this beats
// waitUntilFinished and pub/sub replies (which were lost under load). Chunks travel binary:
// small ones inline in the job, large ones as a Redis key with a TTL that the job refers to.
// Calls made in the same tick to the same mode share one job (up to MAX_BATCH): BullMQ costs
// ~0.2 ms of Redis CPU per job, which capped one-call-per-job at ~2.5k calls/s on two cores.
import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { connectRedis, type Redis } from './redis.js';
import { keys, modeQueueName, QUEUE_PREFIX } from './names.js';

/** One driver call: the encoded DriverRequest, maybe a chunk, maybe string arguments. */
export interface Call {
  request: Uint8Array;
  chunk?: Buffer;
  args?: string[];
}

/** What came back: rc is 0 or a negative errno; chunk/value carry the method's output. */
export interface CallResult {
  rc: number;
  chunk?: Buffer;
  value?: string;
  error?: string;
  /** Milliseconds the serving actor spent on the call (set on replies, for metrics). */
  servedMs?: number;
}

/** Hears every answered call: round trip as the asker saw it, and the server's processing time. */
export type CallObserver = (mode: string, roundTripMs: number, servedMs: number | undefined) => void;

export interface IncomingCall extends Call {
  requestId: string | undefined;
  /** Epoch ms after which nobody waits for the answer. */
  deadline: number;
  jobId: string | undefined;
}

interface CallData {
  id: string;
  reply: string;
  deadline: number;
  req: string;
  chunk?: string;
  chunkKey?: string;
  args?: string[];
  rid?: string;
}

interface JobData {
  calls: CallData[];
}

/** No actor answered in time, or Redis is unreachable: the caller should answer 503. */
export class NoAnswerError extends Error {
  override name = 'NoAnswerError';
}

/** Chunks up to this size ride inline (base64 in JSON); measured faster below ~64 KiB. */
export const INLINE_CHUNK_MAX = 64 * 1024;
/** Most calls one job carries; small enough that a burst still spreads over several actors. */
export const MAX_BATCH = 16;
const REPLY_LIST_TTL_MS = 60_000;

// Completed jobs carry their chunks: keep few, long enough to watch in a dashboard.
export const JOB_RETENTION = {
  removeOnComplete: { count: 100, age: 600 },
  removeOnFail: { count: 1000, age: 24 * 3600 },
} as const;

interface Pending {
  resolve(r: CallResult): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  chunkKey?: string;
  mode: string;
  started: number;
}

export function encodeReply(id: string, r: CallResult): Buffer {
  const header = Buffer.from(JSON.stringify({ id, rc: r.rc, e: r.error, v: r.value, t: r.servedMs }));
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(header.length, 0);
  return Buffer.concat(r.chunk ? [head, header, r.chunk] : [head, header]);
}

export function decodeReply(frame: Buffer): { id: string; result: CallResult } | null {
  if (frame.length < 4) return null;
  const n = frame.readUInt32BE(0);
  if (4 + n > frame.length) return null;
  try {
    const h = JSON.parse(frame.subarray(4, 4 + n).toString()) as { id: string; rc: number; e?: string; v?: string; t?: number };
    const result: CallResult = { rc: h.rc };
    if (frame.length > 4 + n) result.chunk = frame.subarray(4 + n);
    if (h.e !== undefined) result.error = h.e;
    if (h.v !== undefined) result.value = h.v;
    if (typeof h.t === 'number') result.servedMs = h.t;
    return { id: h.id, result };
  } catch {
    return null;
  }
}

/** The asking side: one per process that sends calls (http actor, supervisor tools, benchmarks). */
export class Asker {
  readonly instance: string;
  readonly redis: Redis;
  private readonly blocking: Redis;
  private readonly queues = new Map<string, Queue>();
  private readonly pending = new Map<string, Pending>();
  private readonly replyKey: string;
  private readonly batches = new Map<string, CallData[]>();
  private closed = false;
  private loop: Promise<void> | null = null;
  /** Set by whoever wants call timings (the http actor's metrics); null costs nothing. */
  observe: CallObserver | null = null;

  constructor(redisUrl: string, private readonly gateway: string, instance = randomUUID()) {
    this.instance = instance;
    this.replyKey = keys.results(instance);
    this.redis = connectRedis(redisUrl, 'fail-fast', `sgw-ask-${instance}`);
    this.blocking = connectRedis(redisUrl, 'patient', `sgw-replies-${instance}`);
    this.loop = this.drainReplies();
  }

  private queue(mode: string): Queue {
    let q = this.queues.get(mode);
    if (!q) {
      q = new Queue(modeQueueName(this.gateway, mode as never), {
        connection: this.redis, prefix: QUEUE_PREFIX, defaultJobOptions: JOB_RETENTION,
      });
      q.on('error', () => {});
      this.queues.set(mode, q);
      this.redis.sadd(keys.queues, q.name).catch(() => {});
    }
    return q;
  }

  /** Sends one call and waits for its reply, at most timeoutMs. Rejects with NoAnswerError. */
  async ask(mode: string, call: Call, timeoutMs: number, requestId?: string): Promise<CallResult> {
    if (this.closed) throw new NoAnswerError('asker is closed');
    const id = randomUUID();
    const deadline = Date.now() + timeoutMs;
    const data: CallData = { id, reply: this.replyKey, deadline, req: Buffer.from(call.request).toString('base64') };
    if (call.args) data.args = call.args;
    if (requestId) data.rid = requestId;
    const answer = new Promise<CallResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id);
        reject(new NoAnswerError(`no ${mode} driver actor answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, mode, started: performance.now() });
    });
    try {
      if (call.chunk && call.chunk.length > INLINE_CHUNK_MAX) {
        data.chunkKey = keys.chunk(id);
        this.pending.get(id)!.chunkKey = data.chunkKey;
        await this.redis.set(data.chunkKey, call.chunk, 'PX', timeoutMs + 5000);
      } else if (call.chunk) {
        data.chunk = call.chunk.toString('base64');
      }
      this.enqueue(mode, data);
    } catch (err) {
      this.fail([data], mode, err as Error);
    }
    return answer;
  }

  /** Adds the call to this tick's batch for the mode; the batch becomes one job. */
  private enqueue(mode: string, data: CallData): void {
    let batch = this.batches.get(mode);
    if (!batch) {
      batch = [];
      this.batches.set(mode, batch);
      setImmediate(() => this.flush(mode, batch!));
    }
    batch.push(data);
    if (batch.length >= MAX_BATCH) this.flush(mode, batch);
  }

  private flush(mode: string, batch: CallData[]): void {
    if (this.batches.get(mode) === batch) this.batches.delete(mode);
    if (batch.length === 0) return;
    const calls = batch.splice(0);
    this.queue(mode).add(mode, { calls } satisfies JobData).catch((err: Error) => this.fail(calls, mode, err));
  }

  private fail(calls: CallData[], mode: string, err: Error): void {
    for (const c of calls) this.settle(c.id)?.reject(new NoAnswerError(`cannot queue ${mode} call: ${err.message}`));
  }

  private settle(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (p.chunkKey) this.redis.unlink(p.chunkKey).catch(() => {});
    return p;
  }

  private async drainReplies(): Promise<void> {
    while (!this.closed) {
      let res: unknown;
      try {
        res = await this.blocking.callBuffer('BLMPOP', '1', '1', this.replyKey, 'LEFT', 'COUNT', '512');
      } catch {
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (!res) continue;
      const frames = (res as [Buffer, Buffer[]])[1];
      for (const frame of frames) {
        const reply = decodeReply(frame);
        if (!reply) continue;
        // Duplicates (a retried job answering twice) find nothing pending and are dropped.
        const p = this.settle(reply.id);
        if (!p) continue;
        this.observe?.(p.mode, performance.now() - p.started, reply.result.servedMs);
        p.resolve(reply.result);
      }
    }
  }

  /** Job counts by state for one mode's queue (for status and readiness tools). */
  jobCounts(mode: string) {
    return this.queue(mode).getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, p] of this.pending) {
      this.settle(id);
      p.reject(new NoAnswerError('asker closed'));
    }
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.blocking.disconnect();
    await this.loop?.catch(() => {});
    this.redis.disconnect();
  }
}

export interface ServeOptions {
  redisUrl: string;
  gateway: string;
  mode: string;
  concurrency: number;
  handler: (call: IncomingCall) => Promise<CallResult>;
  /** Called after each job with its outcome, for counters and logs. */
  onDone?: (call: IncomingCall, result: CallResult, ms: number) => void;
}

/** The serving side: consumes one mode's queue and answers each call on its asker's list. */
export class CallServer {
  readonly worker: Worker;
  private readonly redis: Redis;
  private readonly workerRedis: Redis;
  /** Driver calls run at once in this actor (jobs carry several calls each). */
  private readonly slots: Semaphore;
  private readonly replies: ReplyBatcher;

  constructor(private readonly opts: ServeOptions) {
    this.redis = connectRedis(opts.redisUrl, 'patient', `sgw-serve-${opts.gateway}.${opts.mode}`, true);
    this.workerRedis = connectRedis(opts.redisUrl, 'patient');
    this.slots = new Semaphore(opts.concurrency);
    this.replies = new ReplyBatcher(this.redis);
    this.worker = new Worker(modeQueueName(opts.gateway, opts.mode as never), (job: Job<JobData>) => this.process(job), {
      connection: this.workerRedis,
      prefix: QUEUE_PREFIX,
      concurrency: opts.concurrency,
      // A crashed actor's jobs go back to the queue within seconds, not BullMQ's default 30 s.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 3,
      autorun: true,
    });
    this.worker.on('error', () => {});
    // Listed for dashboards: scanning a busy Redis for BullMQ's meta keys would cost it far more.
    this.redis.sadd(keys.queues, this.worker.name).catch(() => {});
  }

  private async process(job: Job<JobData>): Promise<void> {
    await Promise.all((job.data.calls ?? []).map((d) => this.processCall(d, job.id)));
  }

  private async processCall(d: CallData, jobId: string | undefined): Promise<void> {
    if (Date.now() > d.deadline) return; // nobody waits for this answer any more
    const call: IncomingCall = { request: Buffer.from(d.req, 'base64'), requestId: d.rid, deadline: d.deadline, jobId };
    if (d.args) call.args = d.args;
    let result: CallResult;
    const started = performance.now();
    if (d.chunkKey) {
      const chunk = await this.redis.getBuffer(d.chunkKey);
      if (chunk) call.chunk = chunk;
    } else if (d.chunk !== undefined) call.chunk = Buffer.from(d.chunk, 'base64');
    if (d.chunkKey && !call.chunk) result = { rc: -5, error: 'chunk expired before the call ran' };
    else {
      await this.slots.acquire();
      try {
        result = await this.opts.handler(call);
      } catch (err) {
        result = { rc: -5, error: (err as Error).message };
      } finally {
        this.slots.release();
      }
    }
    const ms = performance.now() - started;
    result.servedMs = Math.round(ms * 1000) / 1000;
    await this.replies.send(d.reply, encodeReply(d.id, result));
    this.opts.onDone?.(call, result, ms);
  }

  /**
   * False once this server can no longer take jobs by itself: its worker stopped, or a connection
   * gave up reconnecting. A dropped connection that is still retrying counts as healthy.
   */
  healthy(): boolean {
    return this.worker.isRunning() && this.workerRedis.status !== 'end' && this.redis.status !== 'end';
  }

  /** Stops taking jobs and waits for the ones running (at most graceMs), then disconnects. */
  async close(graceMs = 30_000): Promise<void> {
    await Promise.race([this.worker.close(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.redis.disconnect();
    this.workerRedis.disconnect();
  }
}

/**
 * Sends the replies finished in the same tick as one pipeline: one RPUSH per reply list and one
 * socket write in all. On loopback every write costs the writer the receiver's TCP work too;
 * measured, one write per reply was the read actor's largest cost on cache-miss GETs.
 */
class ReplyBatcher {
  private batch = new Map<string, Buffer[]>();
  private sent: Promise<void> | null = null;

  constructor(private readonly redis: Redis) {}

  /** Resolves once the reply is on its list; rejects if Redis refused it. */
  send(list: string, frame: Buffer): Promise<void> {
    const frames = this.batch.get(list);
    if (frames) frames.push(frame);
    else this.batch.set(list, [frame]);
    this.sent ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    return this.sent;
  }

  private async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = new Map();
    this.sent = null;
    const pipeline = this.redis.pipeline();
    for (const [list, frames] of batch) pipeline.rpush(list, ...frames).pexpire(list, REPLY_LIST_TTL_MS);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err !== null)?.[0];
    if (failed) throw failed;
  }
}

/** Counts free slots; acquire() waits for one. */
class Semaphore {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
