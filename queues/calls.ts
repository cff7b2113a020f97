// What travels in the ask/reply protocol (ask.ts asks, serve.ts serves): a call as the asker
// gives it, as it rides in a BullMQ job (CallData), as the serving actor's handler sees it, and
// its result; with the limits both sides share.
/** One driver call: the encoded DriverRequest, maybe a chunk, maybe string arguments. */
export interface Call {
  request: Uint8Array;
  chunk?: Buffer;
  /**
   * The SHA-256 the chunk must have. The serving actor checks it before its handler sees the
   * chunk, and answers `mismatch` instead of running the call when it differs.
   */
  sha256?: Uint8Array;
  /**
   * The chunk's SHA-256 when the asker already checked it (a POST's chunks against its signed
   * hashes): the call's MAC covers it and the chunk is not hashed again to make it.
   */
  knownSha256?: Uint8Array;
  args?: string[];
  /** A block_vec stored by Asker.share(): `request` is encoded without it, the serving side adds it. */
  blockVec?: SharedRef;
}

/** A byte string stored once in Redis for many calls (Asker.share). */
export interface SharedRef {
  /** Its Redis key. */
  key: string;
  /** SHA-256 of the bytes, hex (covered by call MACs: job-mac.ts). */
  sha256: string;
}

/** A shared block_vec as the serving side hands it to the driver layer: fetched and decoded once per actor. */
export interface SharedBlockVec {
  key: string;
  /** As encodeBlockVec wrote it. */
  bytes: Buffer;
  /** The ids, frozen: every call of the POST gets this one array. */
  ids: readonly bigint[];
  /** SHA-256 of bytes, hex. */
  sha256: string;
}

/** What came back: rc is 0 or a negative errno; chunk/value carry the method's output. */
export interface CallResult {
  rc: number;
  chunk?: Buffer;
  value?: string;
  error?: string;
  /** Milliseconds the serving actor spent on the call (set on replies, for metrics). */
  servedMs?: number;
  /** The call's chunk did not have the call's sha256: the call was not run. */
  mismatch?: true;
}

/** Hears every answered call: round trip as the asker saw it, and the server's processing time. */
export type CallObserver = (mode: string, roundTripMs: number, servedMs: number | undefined) => void;

export interface IncomingCall extends Omit<Call, 'blockVec'> {
  /** The shared block_vec of the call's request, when it was sent apart. */
  blockVec?: SharedBlockVec;
  requestId: string | undefined;
  /** Epoch ms after which nobody waits for the answer. */
  deadline: number;
  jobId: string | undefined;
  /**
   * The chunk's SHA-256 once it is known to be right: checked by the serving actor before the
   * handler, or checked by a MAC'd asker and carried in a host file (serve.ts). A driver may use
   * it instead of hashing the chunk again (drivers/helpers.ts chunkSha256).
   */
  verifiedSha256?: Uint8Array;
}

export interface CallData {
  id: string;
  reply: string;
  /** On Redis's clock (queues/cluster-clock.ts): the asker's and the worker's hosts may disagree. */
  deadline: number;
  req: string;
  chunk?: string;
  chunkKey?: string;
  /** Call.sha256, base64; with a MAC, the SHA-256 of any chunk the call carries. */
  sha256?: string;
  /** 1: the asker vouches for sha256 (it checked or computed it); a mismatch means the chunk was altered on its way. */
  vouched?: 1;
  /** With vouched: the chunk's length (covered by the MAC, unlike `size`, which says how it travels). */
  n?: number;
  /** A chunk in a file of the asker's host (see blobs.ts): its path, host id and size. */
  blob?: string;
  host?: string;
  size?: number;
  args?: string[];
  rid?: string;
  /** Call.blockVec: the Redis key of the request's block_vec, and its SHA-256 (hex). */
  vec?: string;
  vsha?: string;
  /** HMAC of the call (job-mac.ts), base64: a gateway's actors run no call without it. */
  mac?: string;
}

export interface JobData {
  calls: CallData[];
}

/**
 * How long a serving actor may spend on a call whose asker gives up at `deadline`: it stops early
 * enough for its answer (say, "the driver hung": 504) to travel back through Redis first. The
 * margin is a fifth of the time left, at most 250 ms: 50 ms proved too thin on a busy machine,
 * where the asker's 503 then won the race.
 */
export function timeToAnswer(deadline: number, now = Date.now()): number {
  const left = deadline - now;
  return Math.max(1, left - Math.min(250, left / 5));
}

/** No actor answered in time, or Redis is unreachable: the caller should answer 503. */
export class NoAnswerError extends Error {
  override name = 'NoAnswerError';
}

/** Chunks up to this size ride inline (base64 in JSON); measured faster below ~64 KiB. */
export const INLINE_CHUNK_MAX = 64 * 1024;
/** Most calls one job carries; small enough that a burst still spreads over several actors. */
export const MAX_BATCH = 16;
export const REPLY_LIST_TTL_MS = 60_000;

// Finished jobs are kept to watch in a dashboard; serve.ts strips their chunk bytes first.
export const JOB_RETENTION = {
  removeOnComplete: { count: 100, age: 600 },
  removeOnFail: { count: 1000, age: 24 * 3600 },
} as const;
