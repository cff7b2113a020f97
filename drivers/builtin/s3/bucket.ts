// The S3 connection both built-in S3 drivers use (the RG driver beside this file and the AG driver
// in ../s3-dataset): its settings from config.json and the sealed secrets, one client per process,
// attempts retried within a deadline, and S3's errors as negative errnos.
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Errno, log_error, negativeErrnoOf, type ChunkSink, type DriverConfig, type DriverSecrets } from 'sgw';
import { signalled, withCallSignals } from './call-signal.js';

/** Commands of a Bucket's client take the call's abort signal on their input (call-signal.ts). */
export { signalled };

// sgw pins an SDK release that supports Node 20; its warning about later releases is not for
// the operator of a gateway, and its lines would break the actors' JSON log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface BucketSettings {
  /** Absent: AWS S3 itself, found from the region. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  /** Put before every key ("" or ending in "/" as a rule: "sgw/rg20/"). */
  prefix: string;
  /** Buckets in the path (http://host/bucket/key), as MinIO and most S3-compatible servers want. */
  forcePathStyle: boolean;
  /** Absent from the secrets: the SDK's default chain (environment, shared files, instance role). */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The settings of config.json (ENDPOINT, REGION, BUCKET, PREFIX, FORCE_PATH_STYLE) and the secrets, or what is wrong with them. */
export function bucketSettings(config: DriverConfig, secrets: DriverSecrets): BucketSettings | string {
  const bucket = text(config.BUCKET);
  if (!bucket) return 'config.json must set BUCKET';
  for (const secret of ['ACCESS_KEY_ID', 'SECRET_ACCESS_KEY', 'SESSION_TOKEN']) {
    if (secret in config) return `${secret} belongs in the sealed secrets (sgw secrets seal), never in config.json`;
  }
  if (config.PREFIX !== undefined && typeof config.PREFIX !== 'string') return 'PREFIX must be a string';
  const accessKeyId = text(secrets.ACCESS_KEY_ID);
  const secretAccessKey = text(secrets.SECRET_ACCESS_KEY);
  if (!accessKeyId !== !secretAccessKey) return 'the secrets must hold both ACCESS_KEY_ID and SECRET_ACCESS_KEY, or neither';
  const sessionToken = text(secrets.SESSION_TOKEN);
  return {
    endpoint: text(config.ENDPOINT),
    region: text(config.REGION) ?? 'us-east-1',
    bucket,
    prefix: (config.PREFIX as string | undefined) ?? '',
    forcePathStyle: config.FORCE_PATH_STYLE === true || config.FORCE_PATH_STYLE === 'true',
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } : undefined,
  };
}

/** An attempt, or the wait before the next one, reached the call's deadline. */
export class DeadlineReached extends Error {
  override name = 'DeadlineReached';
}

/** An object's body broke after some of it reached chunk_fd: the read cannot start over. */
export class BodyBroken extends Error {
  override name = 'BodyBroken';
}

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const statusOf = (err: unknown) => (err as SdkError | null)?.$metadata?.httpStatusCode;
const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'TooManyRequestsException', 'RequestLimitExceeded']);
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** Worth another attempt: throttling, a 5xx, S3's request timeout, a connection that failed or broke. */
export function isRetryable(err: unknown): boolean {
  const e = err as SdkError | null;
  if (!e) return false;
  const status = statusOf(e) ?? 0;
  return status === 429 || status >= 500 || THROTTLING.has(e.name ?? '') || e.name === 'RequestTimeout'
    || e.$retryable !== undefined || NETWORK.has(e.code ?? '');
}

/** S3's answer as a negative errno: missing → -ENOENT, refused → -EACCES, deadline → -ETIMEDOUT, else -EIO. */
export function errnoOf(err: unknown): number {
  const e = err as SdkError | null;
  if (e instanceof DeadlineReached) return -Errno.ETIMEDOUT;
  if (e?.name === 'NoSuchKey' || e?.name === 'NotFound') return -Errno.ENOENT;
  if (statusOf(e) === 403) return -Errno.EACCES;
  return statusOf(e) === undefined ? negativeErrnoOf(e) : -Errno.EIO;
}

const BACKOFF_FIRST_MS = 20;
const BACKOFF_MAX_MS = 1000;
/** How long a call without a deadline of its own (driver_init, a crawl's listing) keeps trying. */
export const DEFAULT_BUDGET_MS = 10_000;

/**
 * The S3 client settings of both drivers (the bench's "SDK alone" baseline uses them too, so that
 * it measures the gateway's own cost, not different client settings).
 */
export function clientConfig(settings: BucketSettings): S3ClientConfig {
  return {
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    // Retries are ours: the SDK's own would not stop at the call's deadline.
    maxAttempts: 1,
    // Chunks are already checked end to end (SHA-256 in manifests and signed block headers) and
    // SigV4 signs the payload's hash; extra checksums only cost CPU and upset some S3-compatible servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Connections kept open for reuse: at least as many as a driver actor runs calls at once
    // (actors.concurrency, 16 by default).
    requestHandler: { httpAgent: { keepAlive: true, maxSockets: 64 }, httpsAgent: { keepAlive: true, maxSockets: 64 } },
    // The middleware stack resolved once per command class, not on every send (call-signal.ts).
    cacheMiddleware: true,
  };
}

export class Bucket {
  readonly client: S3Client;

  constructor(readonly settings: BucketSettings) {
    this.client = withCallSignals(new S3Client(clientConfig(settings)));
  }

  /** The object key of a path below PREFIX. */
  key(relative: string): string {
    return this.settings.prefix + relative;
  }

  /**
   * Runs `attempt` until it succeeds, fails in a way no retry mends, or `deadline` (epoch ms)
   * comes; retries wait with full-jitter exponential back-off. An attempt cut off by the deadline,
   * or no time left for the next one after a retryable failure, throws DeadlineReached when the
   * last attempt got no answer; else the last failure is thrown.
   */
  async withRetries<T>(deadline: number, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    // One timer for the whole call, not one per attempt: it is on every chunk's path.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(1, deadline - Date.now()));
    const { signal } = controller;
    try {
      for (let n = 0; ; n++) {
        try {
          return await attempt(signal);
        } catch (err) {
          if (signal.aborted) throw new DeadlineReached('S3 did not answer before the call\'s deadline', { cause: err });
          if (!isRetryable(err)) throw err;
          const wait = Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** n);
          if (Date.now() + wait >= deadline) {
            if (statusOf(err) === undefined) throw new DeadlineReached(`S3 unreachable until the call's deadline: ${describe(err)}`, { cause: err });
            throw err;
          }
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Streams an object, or a `range` of it ("bytes=first-last"), into chunk_fd within the deadline.
   * Throws an error with code EFBIG, without reading, when the object is larger than chunk_fd takes.
   */
  async readInto(key: string, chunk_fd: ChunkSink, deadline: number, range?: string): Promise<void> {
    await this.withRetries(deadline, async (abortSignal) => {
      const object = await this.client.send(new GetObjectCommand(signalled({ Bucket: this.settings.bucket, Key: key, Range: range }, abortSignal)));
      const body = object.Body as Readable;
      if ((object.ContentLength ?? 0) > chunk_fd.limit) {
        body.destroy();
        throw Object.assign(new Error(`${key} is larger than a chunk (${chunk_fd.limit} bytes)`), { code: 'EFBIG' });
      }
      const stop = () => body.destroy(new DeadlineReached('the object\'s body did not arrive before the call\'s deadline'));
      abortSignal.addEventListener('abort', stop, { once: true });
      try {
        for await (const part of body) chunk_fd.write(part as Buffer);
      } catch (err) {
        // Once bytes reached chunk_fd the read cannot start over: no retry (the caller may retry the call).
        throw abortSignal.aborted ? err : new BodyBroken(`the body of ${key} broke: ${describe(err)}`, { cause: err });
      } finally {
        abortSignal.removeEventListener('abort', stop);
      }
    });
  }

  /** null when the bucket answers to these credentials; else what is wrong, for the operator. */
  async check(deadline = Date.now() + DEFAULT_BUDGET_MS): Promise<string | null> {
    const { bucket, endpoint, region } = this.settings;
    const where = `bucket ${JSON.stringify(bucket)} at ${endpoint ?? `AWS S3 (${region})`}`;
    try {
      await this.withRetries(deadline, (abortSignal) => this.client.send(new HeadBucketCommand(signalled({ Bucket: bucket }, abortSignal))));
      return null;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return `${where} does not exist`;
      if (status === 403) return `${where} refused these credentials (403): check ACCESS_KEY_ID and SECRET_ACCESS_KEY in the sealed secrets, and that they may list the bucket`;
      if (status === 301 || status === 400) return `${where} answered ${status}: is REGION (${region}) the bucket's region?`;
      return `${where} is unreachable: ${describe(err)}`;
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

export function describe(err: unknown): string {
  const e = err as SdkError & { message?: string };
  const status = statusOf(e);
  return [e?.name, e?.code, status && `HTTP ${status}`, e?.message].filter((x) => x && x !== 'UnknownError').join(': ') || String(err);
}

let open: { config: DriverConfig; secrets: DriverSecrets; key: string; bucket: Bucket } | null = null;

/** The process's Bucket for this config and secrets (a driver actor serves one pair; another pair replaces it). */
export function bucketFor(config: DriverConfig, secrets: DriverSecrets): Bucket | string {
  if (open && open.config === config && open.secrets === secrets) return open.bucket;
  const key = JSON.stringify([config, secrets]);
  if (open?.key === key) {
    open = { ...open, config, secrets };
    return open.bucket;
  }
  const settings = bucketSettings(config, secrets);
  if (typeof settings === 'string') return settings;
  open?.bucket.destroy();
  open = { config, secrets, key, bucket: new Bucket(settings) };
  return open.bucket;
}

/**
 * A driver_init for S3 drivers: false, and a log line saying why, on bad settings or a bucket that
 * does not answer to the credentials.
 */
export async function initBucket(config: DriverConfig, secrets: DriverSecrets, driverName: string): Promise<boolean> {
  const bucket = bucketFor(config, secrets);
  const problem = typeof bucket === 'string' ? bucket : await bucket.check();
  if (problem !== null) log_error('%s: %s', driverName, problem);
  return problem === null;
}

/** Closes the process's Bucket (driver_shutdown). */
export function closeBucket(): void {
  open?.bucket.destroy();
  open = null;
}
