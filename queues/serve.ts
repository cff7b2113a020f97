// The serving side of the ask/reply protocol (ask.ts): a call server consumes one mode's queue,
// runs each call and answers on its asker's reply list. A worker found idle while jobs wait
// (worker-liveness.ts) is replaced in-process by a fresh one on a fresh connection.
import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { connectRedis, type RedisClient, type RedisTarget } from './redis.js';
import { fromClusterTime, syncClusterClock } from './cluster-clock.js';
import { keys, modeQueueName, queuePrefix } from './names.js';
import { HostBlobs } from './blobs.js';
import { hasSha256 } from './chunk-hash.js';
import { BlockVecCache } from './block-vecs.js';
import { Errno } from '../drivers/errno.js';
import { WorkerLiveness } from './worker-liveness.js';
import { HostPresence } from './registry.js';
import { JobLease } from './lease.js';
import { REPLY_LIST_TTL_MS, type CallData, type CallResult, type IncomingCall, type JobData } from './ask.js';
import { encodeReply, encodeStarted, encodeUnreachable, type ReplySeal } from './reply-frame.js';
import type { CallRefusalReason, JobMac } from './job-mac.js';

export interface ServeOptions {
  redis: RedisTarget;
  gateway: string;
  mode: string;
  concurrency: number;
  handler: (call: IncomingCall) => Promise<CallResult>;
  /** Called after each job with its outcome, for counters and logs. */
  onDone?: (call: IncomingCall, result: CallResult, ms: number) => void;
  /** Told when the worker was found idle with jobs waiting and replaced (for logs). */
  onRecycle?: () => void;
  /** How long jobs may wait while the worker idles before it is replaced (worker-liveness.ts). */
  stuckAfterMs?: number;
  /** BullMQ lock of a taken job (default LOCK_MS); a lock not renewed for this long is lost. */
  lockMs?: number;
  /** Told when a call is dropped because its job was given to another worker (lease.ts). */
  onStale?: (call: IncomingCall) => void;
  /**
   * The gateway's MAC keys (job-mac.ts): calls run only with a valid MAC and an unexpired
   * deadline, and replies are sealed. Null only in tests and benchmarks that serve without a gateway.
   */
  mac: JobMac | null;
  /** Told of each call refused unrun (for metrics and logs): an attack, a replay or a backlog, not an sgw fault. */
  onRefused?: (reason: CallRefusalReason, jobId: string | undefined) => void;
}

/** A job with calls that were refused fails with this (after its other calls ran). */
export class CallRefused extends Error {
  override name = 'CallRefused';
}

/** A crashed or cut-off actor's jobs go back to the queue within seconds, not BullMQ's default 30 s. */
const LOCK_MS = 10_000;

/** A replaced worker counts as healthy this long, while the new one starts. */
const RECYCLE_GRACE_MS = 10_000;

/** The serving side: consumes one mode's queue and answers each call on its asker's list. */
export class CallServer {
  private current: Worker;
  private readonly redis: RedisClient;
  private workerRedis: RedisClient;
  private readonly queueName: string;
  /** The same queue, for counting its waiting jobs. */
  private readonly queue: Queue;
  private readonly liveness: WorkerLiveness;
  /** Jobs taken, and jobs running now. */
  private taken = 0;
  private running = 0;
  /** Workers replaced because they idled while jobs waited. */
  recycles = 0;
  private recycledAt = 0;
  /** Driver calls run at once in this actor (jobs carry several calls each). */
  private readonly slots: Semaphore;
  private readonly replies: ReplyBatcher;
  private readonly blobs = HostBlobs.get();
  private readonly blockVecs: BlockVecCache;
  /** Lets askers of this host send large chunks as host files (null without a host channel). */
  private readonly presence: HostPresence | null;
  /** Leases of the jobs running now, by job id (BullMQ reports lost locks by id). */
  private readonly leases = new Map<string, JobLease>();
  /** Calls dropped because their job was given to another worker meanwhile. */
  stale = 0;
  private readonly seal: ReplySeal | null;
  /** Whether this mode's calls need a MAC. */
  private readonly guarded: boolean;

  constructor(private readonly opts: ServeOptions) {
    this.seal = opts.mac ? { mac: opts.mac, mode: opts.mode } : null;
    this.guarded = opts.mac?.needs(opts.mode) ?? false;
    this.redis = connectRedis(opts.redis, 'patient', { name: `sgw-serve-${opts.gateway}.${opts.mode}`, autoPipeline: true });
    this.workerRedis = connectRedis(opts.redis, 'patient');
    this.slots = new Semaphore(opts.concurrency);
    this.replies = new ReplyBatcher(this.redis);
    this.blockVecs = new BlockVecCache(this.redis);
    this.queueName = modeQueueName(opts.gateway, opts.mode as never);
    this.current = this.newWorker();
    this.queue = new Queue(this.queueName, { connection: this.redis, prefix: queuePrefix(this.queueName) });
    this.queue.on('error', () => {});
    this.liveness = new WorkerLiveness({
      waiting: () => this.queue.getWaitingCount(),
      taken: () => this.taken,
      busy: () => this.running >= opts.concurrency,
      onStuck: () => this.replaceWorker(),
    }, opts.stuckAfterMs);
    // Listed for dashboards: scanning a busy Redis for BullMQ's meta keys would cost it far more.
    this.redis.sadd(keys.queues, this.queueName).catch(() => {});
    this.presence = this.blobs ? new HostPresence(this.redis, opts.gateway, opts.mode, this.blobs.hostId, randomUUID()) : null;
  }

  /** Resolves once the worker can take jobs and askers of this host can find it. */
  async ready(): Promise<void> {
    await Promise.all([this.current.waitUntilReady(), this.presence?.first]);
  }

  /** The queue worker serving now (a new one after a replacement). */
  get worker(): Worker {
    return this.current;
  }

  private newWorker(): Worker {
    const lockMs = this.opts.lockMs ?? LOCK_MS;
    const worker = new Worker(this.queueName, (job: Job<JobData>, token?: string) => this.process(job, token), {
      connection: this.workerRedis,
      prefix: queuePrefix(this.queueName),
      concurrency: this.opts.concurrency,
      lockDuration: lockMs,
      stalledInterval: lockMs / 2,
      maxStalledCount: 3,
      autorun: true,
    });
    worker.on('error', () => {});
    worker.on('lockRenewalFailed', (ids: string[]) => { for (const id of ids) this.leases.get(id)?.lose(); });
    // A finished job stays a while for dashboards (JOB_RETENTION), without its chunk bytes: retained
    // write jobs of 16 inline chunks each held ~100 MiB of Redis for nothing. Only once finished: a
    // job retried after a crash must still carry its chunks.
    worker.on('completed', (job) => dropChunks(job));
    worker.on('failed', (job) => { if (job) dropChunks(job); });
    return worker;
  }

  /**
   * Replaces a worker that idles while jobs wait: a fresh connection and worker take over, the old
   * one is closed without waiting for its jobs (they finish and answer; BullMQ hands any it cannot
   * complete to a worker again, and the asker ignores a second answer).
   */
  private async replaceWorker(): Promise<void> {
    const [old, oldRedis] = [this.current, this.workerRedis];
    this.workerRedis = connectRedis(this.opts.redis, 'patient');
    this.current = this.newWorker();
    this.recycles++;
    this.recycledAt = Date.now();
    this.opts.onRecycle?.();
    await Promise.race([old.close(true).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
    oldRedis.disconnect();
  }

  private async process(job: Job<JobData>, token: string | undefined): Promise<void> {
    this.taken++;
    this.running++;
    const lease = new JobLease(job, token, this.opts.lockMs ?? LOCK_MS);
    if (job.id) this.leases.set(job.id, lease);
    let refused: CallRefusalReason[];
    try {
      const calls = Array.isArray(job.data?.calls) ? job.data.calls : [];
      // A job taken again after its lock was lost: its askers drop answers of earlier attempts.
      if (lease.attempt > 1) for (const d of calls) void this.replies.send(d.reply, encodeStarted(d.id, lease.attempt, this.seal)).catch(() => {});
      refused = (await Promise.all(calls.map((d) => this.processCall(d, job.id, lease)))).filter((r): r is CallRefusalReason => r !== null);
    } finally {
      if (job.id) this.leases.delete(job.id);
      this.running--;
    }
    if (refused.length > 0) {
      throw new CallRefused(`refused ${refused.length} call(s) unrun (${[...new Set(refused)].join(', ')}): `
        + 'a call runs only with a valid MAC and an unexpired deadline (docs/security.md)');
    }
  }

  /** Runs one call and answers it; returns why it was refused unrun, if it was. */
  private async processCall(d: CallData, jobId: string | undefined, lease: JobLease): Promise<CallRefusalReason | null> {
    await syncClusterClock(this.redis);
    // The job's deadline is on Redis's clock (cluster-clock.ts); the MAC covers it as written.
    const deadline = fromClusterTime(d.deadline);
    const refusal = this.guarded ? this.opts.mac!.checkCall(this.opts.mode, d) ?? (Date.now() > deadline ? 'expired' : null) : null;
    if (refusal) {
      // No reply: the reply list named by an unauthenticated call is not to be trusted either.
      this.opts.onRefused?.(refusal, jobId);
      return refusal;
    }
    if (Date.now() > deadline) return null; // nobody waits for this answer any more
    const call: IncomingCall = { request: Buffer.from(d.req, 'base64'), requestId: d.rid, deadline, jobId };
    // Taken before this process was paused, and given to another worker meanwhile: leave it to that one.
    if (!(await lease.held())) {
      this.dropStale(call);
      return null;
    }
    if (d.args) call.args = d.args;
    let result: CallResult;
    const started = performance.now();
    if (d.blob !== undefined) {
      const chunk = await this.blobs?.read(d.host ?? '', d.blob, d.id, d.size ?? -1);
      if (!chunk) {
        await this.replies.send(d.reply, encodeUnreachable(d.id, this.seal, lease.attempt));
        return null;
      }
      call.chunk = chunk;
    } else if (d.chunkKey) {
      const chunk = await this.redis.getBuffer(d.chunkKey);
      // Gone before its deadline: written to a master that failed before its replicas had it.
      // The asker still holds the chunk and sends the call again.
      if (!chunk) {
        await this.replies.send(d.reply, encodeUnreachable(d.id, this.seal, lease.attempt));
        return null;
      }
      call.chunk = chunk;
    } else if (d.chunk !== undefined) call.chunk = Buffer.from(d.chunk, 'base64');
    let vecMissing: string | null = null;
    if (d.vec !== undefined) {
      const vec = await this.blockVecs.get(d.vec).catch((err: Error) => err);
      if (vec instanceof Error || vec === null) vecMissing = vec?.message ?? 'expired before the call ran';
      else if (this.guarded && vec.sha256 !== d.vsha) {
        vecMissing = 'it is not the one the call was made with';
        this.opts.onRefused?.('bad-block-vec', jobId);
      } else call.blockVec = vec;
    }
    if (vecMissing !== null) result = { rc: -Errno.EIO, error: `the request's block_vec: ${vecMissing}` };
    else if (d.sha256 !== undefined && !this.trusted(d) && !(await hasSha256(call.chunk ?? Buffer.alloc(0), Buffer.from(d.sha256, 'base64')))) {
      if (d.vouched === 1) {
        this.opts.onRefused?.('altered-chunk', jobId);
        result = { rc: -Errno.EIO, error: 'the chunk was altered on its way: it does not match the hash its call was made with' };
      } else result = { rc: -Errno.EBADMSG, mismatch: true, error: 'the chunk does not match its SHA-256' };
    } else {
      if (d.sha256 !== undefined && call.chunk) call.verifiedSha256 = Buffer.from(d.sha256, 'base64');
      await this.slots.acquire();
      try {
        result = await this.opts.handler(call);
      } catch (err) {
        result = { rc: -Errno.EIO, error: (err as Error).message };
      } finally {
        this.slots.release();
      }
    }
    const ms = performance.now() - started;
    result.servedMs = Math.round(ms * 1000) / 1000;
    if (!(await lease.held())) { // another worker owns the job now: its answer counts
      this.dropStale(call);
      return null;
    }
    await this.replies.send(d.reply, encodeReply(d.id, result, this.seal, lease.attempt));
    this.opts.onDone?.(call, result, ms);
    return null;
  }

  /**
   * Whether a chunk needs no hashing here: its asker checked its hash, the MAC covers that hash,
   * and the bytes came through a host file (blobs.ts; named by the call id, which the MAC covers)
   * rather than through Redis. A 1 MiB chunk is hashed once, in the http actor, not twice.
   */
  private trusted(d: CallData): boolean {
    return this.guarded && d.vouched === 1 && d.blob !== undefined && d.size === d.n;
  }

  private dropStale(call: IncomingCall): void {
    this.stale++;
    this.opts.onStale?.(call);
  }

  /**
   * False once this server can no longer take jobs by itself: its worker stopped, or a connection
   * gave up reconnecting. A dropped connection that is still retrying counts as healthy.
   */
  healthy(): boolean {
    if (Date.now() - this.recycledAt < RECYCLE_GRACE_MS) return this.redis.status !== 'end';
    return this.current.isRunning() && this.workerRedis.status !== 'end' && this.redis.status !== 'end';
  }

  /** Stops taking jobs and waits for the ones running (at most graceMs), then disconnects. */
  async close(graceMs = 30_000): Promise<void> {
    this.liveness.stop();
    await this.presence?.stop();
    await Promise.race([this.current.close(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    await this.queue.close().catch(() => {});
    this.redis.disconnect();
    this.workerRedis.disconnect();
  }
}

/** Rewrites a finished job's data without the bytes of its inline chunks. */
function dropChunks(job: Job<JobData>): void {
  const calls = job.data.calls ?? [];
  if (!calls.some((d) => d.chunk !== undefined)) return;
  const kept = calls.map((d): CallData => {
    const { chunk: _chunk, ...rest } = d;
    return rest;
  });
  job.updateData({ calls: kept }).catch(() => {}); // already removed (retention count), or Redis away
}

/**
 * Sends the replies finished in the same tick together: one RPUSH per reply list, and through the
 * connection's auto-pipelining one socket write in all (one per node in a Cluster, where reply
 * lists of different askers live on different nodes and no single pipeline may span them). On
 * loopback every write costs the writer the receiver's TCP work too; measured, one write per
 * reply was the read actor's largest cost on cache-miss GETs.
 */
class ReplyBatcher {
  private batch = new Map<string, Buffer[]>();
  private sent: Promise<void> | null = null;

  constructor(private readonly redis: RedisClient) {}

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
    await Promise.all([...batch].flatMap(([list, frames]) => [this.redis.rpush(list, ...frames), this.redis.pexpire(list, REPLY_LIST_TTL_MS)]));
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
