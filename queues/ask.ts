// The ask/reply protocol every actor uses. A call is a BullMQ job on "<gateway>.<mode>" (visible
// in a Bull dashboard); its reply is one binary element pushed onto the asking instance's own
// result list, which the asker drains with batched BLMPOP. Measured here, this beats
// waitUntilFinished and pub/sub replies (which were lost under load). Chunks travel binary:
// small ones inline in the job, large ones as a file in shared memory when a serving actor of the
// mode runs on this host (blobs.ts; registry.ts HostPeers tells), else at once as a Redis key with
// a TTL that the job refers to. The serving side is serve.ts.
// Calls made in the same tick to the same mode share one job (up to MAX_BATCH): BullMQ costs
// ~0.2 ms of Redis CPU per job, which capped one-call-per-job at ~2.5k calls/s on two cores.
// Every DriverRequest of a PUTCHUNKS carries the block ids of the whole POST (block_vec): sent
// with each call, a POST of n blocks would move n^2 ids. A large block_vec is therefore stored
// once per POST as a Redis key (share()), each call names it, and the serving side fetches it once
// and puts it back into the DriverRequest its driver sees (serve.ts, drivers/chassis.ts).
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { syncClusterClock, toClusterTime } from './cluster-clock.js';
import { connectRedis, type RedisClient, type RedisTarget } from './redis.js';
import { keys, modeQueueName, queuePrefix } from './names.js';
import { HostBlobs, type BlobRef } from './blobs.js';
import { HostPeers } from './registry.js';
import { decodeReply, type DecodedReply } from './reply-frame.js';
import { sha256 } from './chunk-hash.js';
import type { JobMac } from './job-mac.js';

import {
  INLINE_CHUNK_MAX, JOB_RETENTION, MAX_BATCH, NoAnswerError,
  type Call, type CallData, type CallObserver, type CallResult, type JobData, type SharedRef,
} from './calls.js';

export * from './calls.js';

/** Times a call whose chunk key was lost is sent again (a key lost twice means Redis is failing: answer 503). */
const REDIS_RESENDS = 2;

/** A reply pop (blocking one second) unanswered this long means its server hangs. */
const REPLY_POP_STUCK_MS = 10_000;

interface Pending {
  resolve(r: CallResult): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  chunkKey?: string;
  mode: string;
  started: number;
  deadline: number;
  /** Sent as a host file: kept to send again through Redis if the worker cannot read the file. */
  blob?: { ref: BlobRef; chunk: Buffer; data: CallData };
  /** Sent as a Redis key: kept to put again if the key is gone when the worker looks (lost in a failover). */
  inRedis?: { chunk: Buffer; data: CallData; resends: number };
  /** How the call's large chunk travels now (counted once its answer comes). */
  carried?: 'host' | 'redis';
  /** The latest attempt known to run the call's job: answers of earlier attempts are stale. */
  attempt?: number;
}

export { decodeReply, encodeReply, encodeStarted, encodeUnreachable } from './reply-frame.js';

/** The asking side: one per process that sends calls (http actor, supervisor tools, benchmarks). */
export class Asker {
  readonly instance: string;
  readonly redis: RedisClient;
  private readonly blocking: RedisClient;
  private readonly queues = new Map<string, Queue>();
  private readonly pending = new Map<string, Pending>();
  private readonly replyKey: string;
  private readonly batches = new Map<string, CallData[]>();
  private readonly blobs = HostBlobs.get();
  private readonly peers: HostPeers | null;
  /** Large chunks delivered, by what carried them (host file or Redis key), counted on the answer. */
  readonly chunkTransfers = { host: 0, redis: 0 };
  /** Host files a worker of another host could not read (the chunk was sent again through Redis). */
  chunkHostMisses = 0;
  /** Chunk keys a worker found gone, a failover having lost them (the chunk was put again). */
  chunkKeyLosses = 0;
  /** Answers dropped because a later attempt of their job runs (its lock was lost meanwhile). */
  staleAnswers = 0;
  private closed = false;
  private loop: Promise<void> | null = null;
  /** Set by whoever wants call timings (the http actor's metrics); null costs nothing. */
  observe: CallObserver | null = null;
  /** Replies dropped because their MAC did not check out (forged by a Redis client), by mode. */
  readonly refusedReplies: Record<string, number> = {};

  /** `mac`: the gateway's MAC keys; without them calls carry no MAC and replies are not checked (tests, benchmarks). */
  constructor(target: RedisTarget, private readonly gateway: string, private readonly mac: JobMac | null = null, instance = randomUUID()) {
    this.instance = instance;
    this.replyKey = keys.results(instance);
    this.redis = connectRedis(target, 'fail-fast', `sgw-ask-${instance}`);
    this.blocking = connectRedis(target, 'patient', { name: `sgw-replies-${instance}`, commandTimeoutMs: REPLY_POP_STUCK_MS });
    this.loop = this.drainReplies();
    this.peers = this.blobs ? new HostPeers(this.redis, gateway, this.blobs.hostId) : null;
  }

  private queue(mode: string): Queue {
    let q = this.queues.get(mode);
    if (!q) {
      const name = modeQueueName(this.gateway, mode as never);
      q = new Queue(name, { connection: this.redis, prefix: queuePrefix(name), defaultJobOptions: JOB_RETENTION });
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
    await syncClusterClock(this.redis);
    const deadline = Date.now() + timeoutMs;
    const data: CallData = { id, reply: this.replyKey, deadline: toClusterTime(deadline), req: Buffer.from(call.request).toString('base64') };
    if (call.args) data.args = call.args;
    if (call.sha256) data.sha256 = Buffer.from(call.sha256).toString('base64');
    if (call.blockVec) {
      data.vec = call.blockVec.key;
      data.vsha = call.blockVec.sha256;
    }
    if (requestId) data.rid = requestId;
    const answer = new Promise<CallResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id);
        reject(new NoAnswerError(`no ${mode} driver actor answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, mode, started: performance.now(), deadline });
    });
    try {
      if (this.mac?.needs(mode)) {
        // A chunk's MAC is its SHA-256's; a POST's chunks come with theirs, others are hashed here.
        if (call.chunk && !data.sha256) {
          data.sha256 = Buffer.from(call.knownSha256 ?? (await sha256(call.chunk))).toString('base64');
          data.vouched = 1;
          data.n = call.chunk.length;
        }
        data.mac = this.mac.signCall(mode, data);
      }
      if (call.chunk && call.chunk.length > INLINE_CHUNK_MAX) {
        const p = this.pending.get(id)!;
        const onHost = (await this.peers?.sameHost(mode)) && (await this.putOnHost(p, data, call.chunk));
        if (!onHost) await this.putInRedis(p, data, call.chunk);
      } else if (call.chunk) {
        data.chunk = call.chunk.toString('base64');
      }
      this.enqueue(mode, data);
    } catch (err) {
      this.fail([data], mode, err as Error);
    }
    return answer;
  }

  /** Puts the chunk in a host file for the job; false when there is no channel or it failed (full tmpfs...). */
  private async putOnHost(p: Pending, data: CallData, chunk: Buffer): Promise<boolean> {
    if (!this.blobs) return false;
    let ref: BlobRef;
    try {
      ref = await this.blobs.put(data.id, chunk);
    } catch {
      return false;
    }
    data.blob = ref.path;
    data.host = this.blobs.hostId;
    data.size = chunk.length;
    p.blob = { ref, chunk, data };
    p.carried = 'host';
    if (!this.pending.has(data.id)) ref.release(); // timed out meanwhile
    return true;
  }

  private async putInRedis(p: Pending, data: CallData, chunk: Buffer): Promise<void> {
    data.chunkKey = keys.chunk(data.id);
    p.chunkKey = data.chunkKey;
    p.carried = 'redis';
    p.inRedis = { chunk, data, resends: p.inRedis?.resends ?? 0 };
    await this.redis.set(data.chunkKey, chunk, 'PX', Math.max(1, p.deadline - Date.now()) + 5000);
  }

  /**
   * The worker could not get the call's chunk: its host file (the worker runs elsewhere) or its
   * Redis key (written to a master that failed before its replicas had it). Sends the call again
   * with the chunk put in Redis anew, at most REDIS_RESENDS times for a lost key.
   */
  private resendThroughRedis(id: string): void {
    const p = this.pending.get(id);
    if (!p) return; // answered or timed out
    let chunk: Buffer;
    let data: CallData;
    if (p.blob) {
      ({ chunk, data } = p.blob);
      p.blob.ref.release();
      delete p.blob;
      this.chunkHostMisses++;
    } else if (p.inRedis && p.inRedis.resends < REDIS_RESENDS) {
      ({ chunk, data } = p.inRedis);
      p.inRedis.resends++;
      this.chunkKeyLosses++;
    } else {
      return;
    }
    const again: CallData = { ...data };
    delete again.blob;
    delete again.host;
    delete again.size;
    this.putInRedis(p, again, chunk).then(() => this.enqueue(p.mode, again), (err: Error) => this.fail([again], p.mode, err));
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
    p.blob?.ref.release();
    return p;
  }

  private async drainReplies(): Promise<void> {
    while (!this.closed) {
      let res: unknown;
      try {
        res = await this.blocking.callBuffer('BLMPOP', '1', '1', this.replyKey, 'LEFT', 'COUNT', '512');
      } catch (err) {
        if (this.closed) return;
        // A pop that outlives its one-second block reached a server that hangs (a master that
        // stopped without closing its connections): connect again, to wherever the master is now.
        if ((err as Error).message === 'Command timed out') this.blocking.disconnect(true);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (!res) continue;
      const frames = (res as [Buffer, Buffer[]])[1];
      for (const frame of frames) {
        const reply = decodeReply(frame);
        if (!reply) continue;
        if (this.mac) {
          // Not the serving actor's (a Redis client pushed it): as if it never came.
          const waiting = this.pending.get(reply.id);
          if (!waiting) continue;
          if (!this.mac.checkReply(waiting.mode, reply.signed, reply.mac)) {
            this.refusedReplies[waiting.mode] = (this.refusedReplies[waiting.mode] ?? 0) + 1;
            continue;
          }
        }
        if (this.stale(reply)) continue;
        if (reply.unreachable) {
          this.resendThroughRedis(reply.id);
          continue;
        }
        // Duplicates (a retried job answering twice) find nothing pending and are dropped.
        const p = this.settle(reply.id);
        if (!p) continue;
        if (p.carried) this.chunkTransfers[p.carried]++;
        this.observe?.(p.mode, performance.now() - p.started, reply.result.servedMs);
        p.resolve(reply.result);
      }
    }
  }

  /** Notes a started attempt; true for an answer of an attempt older than one known to run (dropped). */
  private stale(reply: DecodedReply): boolean {
    const p = this.pending.get(reply.id);
    if (!p) return false; // settled or unknown: dropped as a duplicate anyway
    if (reply.started !== undefined) {
      p.attempt = Math.max(p.attempt ?? 0, reply.started);
      return true;
    }
    if (p.attempt === undefined || (reply.attempt ?? 0) >= p.attempt) return false;
    this.staleAnswers++;
    return true;
  }

  /**
   * Stores bytes that many calls share (a POST's block_vec) once, until `deadline` (plus the
   * margin chunks get); calls name them with the returned ref. unshare() drops them early.
   */
  async share(bytes: Buffer, deadline: number): Promise<SharedRef> {
    const key = keys.blockVec(randomUUID());
    await this.redis.set(key, bytes, 'PX', Math.max(1, deadline - Date.now()) + 5000);
    return { key, sha256: (await sha256(bytes)).toString('hex') };
  }

  unshare(ref: SharedRef): void {
    this.redis.unlink(ref.key).catch(() => {});
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
