// The chunk pipelines of a replica gateway, through the driver queues:
//   read:  read -> serialize -> (caller caches)          store: deserialize -> write
// Methods the driver lacks are short-circuited here: no queue, no actor, bytes passed through.
import { randomBytes } from 'node:crypto';
import { DriverRequestCodec, type DriverRequest } from '../proto/messages.js';
import { NoAnswerError, type Asker, type Call, type CallResult, type SharedRef } from '../queues/ask.js';
import type { DriverMode } from '../queues/names.js';
import { unavailable } from './errors.js';
import type { Readiness } from './readiness.js';

/**
 * memory false: leave the in-memory tier alone (a chunk that streams past once, in a read larger
 * than that tier, would only push hot chunks out of memory, and hold memory until V8 collects it).
 * A hint: a cache actor in another process keeps its own policy.
 */
export interface CacheHint {
  memory?: boolean;
}

export interface ChunkCache {
  get(key: string, hint?: CacheHint): Promise<Buffer | null>;
  put(key: string, bytes: Uint8Array, hint?: CacheHint): Promise<void>;
  delete(key: string): Promise<boolean>;
}

/** Counters of a chunk store (what the cache actor publishes and metrics export). */
export interface ChunkStoreStats {
  /** Bytes of segment files on disk (what counts against maxBytes). */
  bytes: number;
  entries: number;
  memoryBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  maxBytes: number;
}

export interface PipelineDeps {
  asker: Asker;
  /** Modes the current driver version implements. */
  methods: () => ReadonlySet<DriverMode>;
  /** Live actors of a mode, as last seen (cheap) and counted again now (a Redis round trip). */
  liveActors: (mode: DriverMode) => number;
  liveActorsNow: (mode: DriverMode) => Promise<number>;
  callTimeoutMs: number;
  /** Readiness per mode: a call to a mode nobody can serve now is not attempted (503 + Retry-After). */
  readiness?: Readiness;
}

/** A chunk-level outcome: rc 0 with bytes, or a negative errno. */
export interface ChunkResult {
  rc: number;
  chunk?: Buffer;
  error?: string;
  /** The chunk did not have the SHA-256 it was sent with: nothing was run. */
  mismatch?: true;
}

/** What the driver calls made for one POST share. */
export interface PostCalls {
  deadline: number;
  rid: string;
  /** The POST's block_vec, stored once for all its calls (absent: each DriverRequest carries its own). */
  blockVec?: SharedRef;
  /** Set just before the first call that may change the back-end is sent: from then on the POST may have had an effect. */
  changed: boolean;
}

/** Modes whose calls may change what the back-end holds (a refresh publishes to the namespace). */
const CHANGING: ReadonlySet<DriverMode> = new Set(['write', 'delete', 'rename', 'refresh']);

// io_context values come from a pool of random bytes: one randomBytes() call per 1024 of them.
let pool = Buffer.alloc(0);
let poolAt = 0;

export function randomIoContext(): bigint {
  if (poolAt >= pool.length) {
    pool = randomBytes(8 * 1024);
    poolAt = 0;
  }
  const v = pool.readBigUInt64BE(poolAt);
  poolAt += 8;
  return v;
}

export class DriverPipeline {
  constructor(private readonly deps: PipelineDeps) {}

  has(mode: DriverMode): boolean {
    return this.deps.methods().has(mode);
  }

  /**
   * One call to one mode; 503 when no actor is alive or none answers before the deadline. With
   * `post`, the call is one of a POST's: it shares the POST's block_vec, and marks the POST changed
   * when it is sent to a mode that may change the back-end.
   */
  async call(mode: DriverMode, req: DriverRequest, deadline: number, rid: string | undefined, extra: Omit<Call, 'request'> = {}, post?: PostCalls): Promise<CallResult> {
    if (!this.has(mode)) throw unavailable(`the driver has no ${mode} method`);
    await this.need([mode]);
    if (this.deps.liveActors(mode) === 0 && (await this.deps.liveActorsNow(mode)) === 0) {
      throw unavailable(`no ${mode} driver actor is running`);
    }
    const left = Math.min(this.deps.callTimeoutMs, deadline - Date.now());
    if (left <= 0) throw new NoAnswerError(`request deadline passed before the ${mode} call`);
    const call: Call = { request: DriverRequestCodec.encode(req), ...extra };
    if (post) {
      if (post.blockVec) call.blockVec = post.blockVec;
      if (CHANGING.has(mode)) post.changed = true;
    }
    return this.deps.asker.ask(mode, call, left, rid);
  }

  /** 503 unless every one of these modes can be served now; checked before the first call of a pipeline. */
  private async need(modes: readonly DriverMode[]): Promise<void> {
    const readiness = this.deps.readiness;
    if (readiness && !readiness.ready) await readiness.require(modes);
  }

  /** Stores a POST's block_vec once for all its calls (see queues/ask.ts). */
  shareBlockVec(encoded: Buffer, deadline: number): Promise<SharedRef> {
    return this.deps.asker.share(encoded, deadline);
  }

  unshareBlockVec(ref: SharedRef): void {
    this.deps.asker.unshare(ref);
  }

  /** read_chunk (an AG's read), then serialize when the driver has it; `wrap` goes in between (an AG signs blocks). */
  async read(req: DriverRequest, deadline: number, rid?: string, wrap?: (chunk: Buffer) => Buffer | Promise<Buffer>): Promise<ChunkResult> {
    await this.need(['read', 'serialize']);
    const r = await this.call('read', req, deadline, rid);
    if (r.rc !== 0) return r;
    const chunk = r.chunk ?? Buffer.alloc(0);
    return this.transform('serialize', req, wrap ? await wrap(chunk) : chunk, deadline, rid);
  }

  /** serialize when the driver has it (chunks the gateway makes itself, like an AG's manifests). */
  serialize(req: DriverRequest, chunk: Buffer, deadline: number, rid?: string): Promise<ChunkResult> {
    return this.transform('serialize', req, chunk, deadline, rid);
  }

  /**
   * deserialize when the driver has it, then write_chunk. With `check`, the first actor to get
   * the serialized chunk checks it before its driver sees it (a `mismatch` result: nothing ran);
   * `known` is a hash this actor already checked, which the call's MAC covers (queues/job-mac.ts).
   */
  async store(req: DriverRequest, serialized: Buffer, post: PostCalls, hash: { check?: Uint8Array; known?: Uint8Array } = {}): Promise<ChunkResult> {
    await this.need(['deserialize', 'write']);
    const checked = hash.check ? { sha256: hash.check } : {};
    if (!this.has('deserialize')) {
      return this.call('write', req, post.deadline, post.rid, { chunk: serialized, ...checked, ...(hash.known ? { knownSha256: hash.known } : {}) }, post);
    }
    const d = await this.transform('deserialize', req, serialized, post.deadline, post.rid, checked.sha256 ? checked : hash.known ? { knownSha256: hash.known } : {}, post);
    if (d.rc !== 0) return d;
    return this.call('write', req, post.deadline, post.rid, { chunk: d.chunk! }, post);
  }

  async delete(req: DriverRequest, post: PostCalls): Promise<ChunkResult> {
    return this.call('delete', req, post.deadline, post.rid, {}, post);
  }

  /** rename_file; a driver without it has nothing to do on rename (the S3 case in the seed). */
  async rename(req: DriverRequest, oldPath: string, newPath: string, post: PostCalls): Promise<ChunkResult> {
    // The manifest is stored under the new path next: refuse before renaming when that cannot be done.
    await this.need(['rename', 'deserialize', 'write']);
    if (!this.has('rename')) return { rc: 0 };
    return this.call('rename', req, post.deadline, post.rid, { args: [oldPath, newPath] }, post);
  }

  private async transform(
    mode: 'serialize' | 'deserialize', req: DriverRequest, chunk: Buffer, deadline: number, rid?: string, extra: Pick<Call, 'sha256' | 'knownSha256'> = {}, post?: PostCalls,
  ): Promise<ChunkResult> {
    if (!this.has(mode)) return { rc: 0, chunk };
    const r = await this.call(mode, req, deadline, rid, { chunk, ...extra }, post);
    return r.rc === 0 ? { rc: 0, chunk: r.chunk ?? Buffer.alloc(0) } : r;
  }
}
