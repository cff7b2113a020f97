// The built-in replica gateway (RG) driver for S3 and S3-compatible object stores (MinIO, Ceph RGW,
// R2, ...): each chunk is one object at PREFIX + request_to_storage_path(request), the layout
// Syndicate back-ends use. config.json: ENDPOINT, REGION, BUCKET, PREFIX, FORCE_PATH_STYLE; the
// credentials (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN) only in the sealed secrets.
// docs/s3.md shows a whole setup. Copy this folder (with bucket.ts) to start a driver for another
// object store: it works as it is, wherever it is copied.
//
// Every call keeps trying through throttling, 5xx answers and broken connections until its
// deadline (callDeadline), then answers -ETIMEDOUT (no answer from S3) or -EIO. Chunks are
// immutable, so writing the same key twice writes the same bytes, and a delete of a missing object
// succeeds: every call may be retried.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  callDeadline, chunkSha256, Errno, log_error, request_to_storage_path,
  type ChunkSink, type DriverConfig, type DriverRequest, type DriverSecrets,
} from 'sgw';
import { bucketFor, closeBucket, DEFAULT_BUDGET_MS, describe, errnoOf, initBucket, signalled, type Bucket } from './bucket.js';

/** Refuses to start (false, and a log line saying why) on bad settings, or a bucket that does not answer to the credentials. */
export function driver_init(driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<boolean> {
  return initBucket(driver_config, driver_secrets, 's3 driver');
}

interface Target {
  bucket: Bucket;
  key: string;
  deadline: number;
}

function targetOf(request: DriverRequest, config: DriverConfig, secrets: DriverSecrets): Target | null {
  const bucket = bucketFor(config, secrets);
  if (typeof bucket === 'string') return null; // driver_init said why
  return { bucket, key: bucket.key(request_to_storage_path(request)), deadline: callDeadline(request) ?? Date.now() + DEFAULT_BUDGET_MS };
}

function failed(what: string, t: Target, err: unknown): number {
  const rc = errnoOf(err);
  if (rc !== -Errno.ENOENT) log_error('s3 driver: %s %s: %s', what, t.key, describe(err));
  return rc;
}

/** Streams the object into chunk_fd; -ENOENT when there is none (HTTP 404). */
export async function read_chunk(request: DriverRequest, chunk_fd: ChunkSink, driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<number> {
  const t = targetOf(request, driver_config, driver_secrets);
  if (!t) return -Errno.EINVAL;
  const { bucket, key, deadline } = t;
  try {
    await bucket.readInto(key, chunk_fd, deadline);
    return 0;
  } catch (err) {
    return failed('read', t, err);
  }
}

/** Stores the chunk as one object; a 200 from S3 means it is durable there. */
export async function write_chunk(request: DriverRequest, chunk: Buffer, driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<number> {
  const t = targetOf(request, driver_config, driver_secrets);
  if (!t) return -Errno.EINVAL;
  const { bucket, key, deadline } = t;
  // Checked by the actor before this call: the request's signature need not hash the chunk again.
  const sha256 = chunkSha256(request);
  try {
    await bucket.withRetries(deadline, (abortSignal) => bucket.client.send(
      new PutObjectCommand(signalled({ Bucket: bucket.settings.bucket, Key: key, Body: chunk, ContentLength: chunk.length, ContentType: 'application/octet-stream' }, abortSignal, sha256)),
    ));
    return 0;
  } catch (err) {
    return failed('write', t, err);
  }
}

/** Removes the object; one already gone counts as deleted (S3 answers so too). */
export async function delete_chunk(request: DriverRequest, driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<number> {
  const t = targetOf(request, driver_config, driver_secrets);
  if (!t) return -Errno.EINVAL;
  const { bucket, key, deadline } = t;
  try {
    await bucket.withRetries(deadline, (abortSignal) => bucket.client.send(new DeleteObjectCommand(signalled({ Bucket: bucket.settings.bucket, Key: key }, abortSignal))));
    return 0;
  } catch (err) {
    const rc = failed('delete', t, err);
    return rc === -Errno.ENOENT ? 0 : rc;
  }
}

/** Nothing to do: this layout is keyed by file id, not by path. */
export function rename_file(_request: DriverRequest, _old_path: string, _new_path: string, _driver_config: DriverConfig, _driver_secrets: DriverSecrets): number {
  return 0;
}

export function driver_shutdown(): void {
  closeBucket();
}
