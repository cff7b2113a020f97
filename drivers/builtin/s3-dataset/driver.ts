// The built-in acquisition gateway (AG) driver for a bucket of S3 or an S3-compatible store: it
// publishes the objects under PREFIX as a tree (keys split on "/", a directory for every prefix)
// and serves byte ranges of them with ranged GETs. config.json: ENDPOINT, REGION, BUCKET, PREFIX,
// FORCE_PATH_STYLE (as the S3 RG driver, whose bucket.ts this driver shares) and RESCAN_MS; the
// credentials only in the sealed secrets. docs/s3.md shows a whole setup.
//
// next_dataset() publishes the listing on its first call, then lists the bucket again every
// RESCAN_MS (default 30000) and hands the gateway what changed: new objects, objects whose ETag,
// size or date changed (a new version), and objects that went (children before their directory).
// refresh() re-lists one path at once. A listing that fails changes nothing: an outage of the
// store never reads as "everything was deleted".
import { ListObjectsV2Command, type _Object } from '@aws-sdk/client-s3';
import {
  callDeadline, Errno, log_error, PublishedTree, request_byte_len, request_byte_offset, request_path, ScanPause,
  type ChunkSink, type DatasetEntry, type DriverConfig, type DriverRequest, type DriverSecrets,
} from 'sgw';
import { bucketFor, closeBucket, DEFAULT_BUDGET_MS, describe, errnoOf, initBucket, signalled, type Bucket } from 'sgw/builtin/s3/bucket';

// An archive is read-only: files r--r--r--, directories r-xr-xr-x.
const FILE_MODE = 0o444;
const DIRECTORY: DatasetEntry = { type: 'directory', size: 4096, mode: 0o555, stamp: '' };

/** What the gateway has accepted so far; null until the first listing. */
let published: PublishedTree | null = null;
const pause = new ScanPause();

function rescanMs(config: DriverConfig): number {
  const ms = Number(config.RESCAN_MS ?? 30_000);
  return Number.isFinite(ms) && ms >= 10 ? ms : 30_000;
}

/** A namespace path is absolute, without empty, "." or ".." segments, newline or NUL. */
function isCleanPath(path: string): boolean {
  return path.startsWith('/') && !/[\n\0]/.test(path) && (path === '/' || path.slice(1).split('/').every((s) => s !== '' && s !== '.' && s !== '..'));
}

const inside = (p: string, under: string) => under === '/' || p === under || p.startsWith(`${under}/`);

/** Adds an object found by a listing: its directories, then the file (a "name/" key is a directory marker). */
function addObject(found: Map<string, DatasetEntry>, relative: string, object: _Object): void {
  const marker = relative.endsWith('/');
  const path = `/${marker ? relative.slice(0, -1) : relative}`;
  if (path === '/' || !isCleanPath(path)) return; // no namespace path can name it
  for (let at = path.indexOf('/', 1); at !== -1; at = path.indexOf('/', at + 1)) found.set(path.slice(0, at), DIRECTORY);
  // A key that is also the prefix of other keys ("a" and "a/b") is published as the directory.
  if (marker || found.get(path)?.type === 'directory') found.set(path, DIRECTORY);
  else found.set(path, {
    type: 'file', size: object.Size ?? 0, mode: FILE_MODE, stamp: `${object.ETag ?? ''}|${object.LastModified?.getTime() ?? ''}`,
    ...(object.LastModified ? { mtime: object.LastModified.getTime() / 1000 } : {}),
  });
}

/** Lists the objects at or under `under` (a namespace path), page by page; throws when a page cannot be had. */
async function list(bucket: Bucket, under: string, deadlineOfPage: () => number): Promise<Map<string, DatasetEntry>> {
  const found = new Map<string, DatasetEntry>();
  const prefix = bucket.key(under === '/' ? '' : under.slice(1));
  let token: string | undefined;
  do {
    const page = await bucket.withRetries(deadlineOfPage(), (abortSignal) => bucket.client.send(
      new ListObjectsV2Command(signalled({ Bucket: bucket.settings.bucket, Prefix: prefix, ContinuationToken: token }, abortSignal)),
    ));
    for (const object of page.Contents ?? []) {
      const relative = object.Key?.slice(bucket.settings.prefix.length) ?? '';
      // Listing "a/b" also finds "a/bc": keep what lies under the path (and the parents on the way).
      if (inside(`/${relative.replace(/\/$/, '')}`, under)) addObject(found, relative, object);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

export function driver_init(driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<boolean> {
  return initBucket(driver_config, driver_secrets, 's3-dataset driver');
}

export async function next_dataset(driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<boolean> {
  const bucket = bucketFor(driver_config, driver_secrets);
  if (typeof bucket === 'string') return false; // driver_init said why
  if (published === null) {
    published = new PublishedTree();
  } else {
    await pause.wait(rescanMs(driver_config));
  }
  if (pause.stopped) return false;
  try {
    await published.publish(await list(bucket, '/', () => Date.now() + DEFAULT_BUDGET_MS), '/');
  } catch (err) {
    log_error('s3-dataset driver: listing the bucket failed; nothing changed, next try in %d ms: %s', rescanMs(driver_config), describe(err));
  }
  return true;
}

/** Re-lists one path (and what lies under it) at once. */
export async function refresh(request: DriverRequest, driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<number> {
  const bucket = bucketFor(driver_config, driver_secrets);
  if (typeof bucket === 'string') return -Errno.EINVAL;
  const path = request_path(request);
  if (!isCleanPath(path)) return -Errno.EACCES;
  const deadline = callDeadline(request) ?? Date.now() + DEFAULT_BUDGET_MS;
  published ??= new PublishedTree();
  try {
    await published.publish(await list(bucket, path, () => deadline), path);
    return 0;
  } catch (err) {
    log_error('s3-dataset driver: refresh %s: %s', path, describe(err));
    return errnoOf(err);
  }
}

/** Streams the requested byte range of the object into chunk_fd (a ranged GET). */
export async function read(request: DriverRequest, chunk_fd: ChunkSink, driver_config: DriverConfig, driver_secrets: DriverSecrets): Promise<number> {
  const bucket = bucketFor(driver_config, driver_secrets);
  if (typeof bucket === 'string') return -Errno.EINVAL;
  const path = request_path(request);
  if (!isCleanPath(path) || path === '/') return -Errno.EACCES;
  const offset = request_byte_offset(request) ?? 0n;
  const len = request_byte_len(request) ?? 0n;
  if (len === 0n) return 0;
  if (len > BigInt(chunk_fd.limit)) return -Errno.EFBIG;
  const key = bucket.key(path.slice(1));
  const deadline = callDeadline(request) ?? Date.now() + DEFAULT_BUDGET_MS;
  try {
    await bucket.readInto(key, chunk_fd, deadline, `bytes=${offset}-${offset + len - 1n}`);
    return 0;
  } catch (err) {
    if ((err as { name?: string }).name === 'InvalidRange') return 0; // the object shrank: serve what is there
    const rc = errnoOf(err);
    if (rc !== -Errno.ENOENT) log_error('s3-dataset driver: read %s: %s', key, describe(err));
    return rc;
  }
}

export function driver_shutdown(): void {
  pause.stop();
  closeBucket();
}
