// The built-in acquisition gateway (AG) driver: publishes the directory tree under DATASET_DIR
// and serves byte ranges of its files. Copy this folder to start an AG driver: it works as
// it is, wherever it is copied.
//
// next_dataset() publishes every directory and file on its first call, then rescans every
// RESCAN_MS (default 2000) and hands the gateway what changed: new entries, updates (size, mode or
// mtime changed) and deletions (children before their directory). refresh() re-checks one path
// at once. Symbolic links are never published or followed, and no path may leave DATASET_DIR.
import { closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import {
  Errno, log_error, negativeErrnoOf, PublishedTree, request_byte_len, request_byte_offset, request_path, ScanPause,
  type ChunkSink, type DatasetEntry, type DriverConfig, type DriverRequest, type DriverSecrets,
} from 'sgw';

/** What the gateway has accepted so far; null until the first scan. */
let published: PublishedTree | null = null;
const pause = new ScanPause();

/** DATASET_DIR from config.json (a relative one was made absolute against the driver folder when it was published). */
function datasetDir(config: DriverConfig): string | null {
  const dir = config.DATASET_DIR;
  return typeof dir === 'string' && dir !== '' ? resolve(dir) : null;
}

function rescanMs(config: DriverConfig): number {
  const ms = Number(config.RESCAN_MS ?? 2000);
  return Number.isFinite(ms) && ms >= 10 ? ms : 2000;
}

/**
 * How long a scan makes synchronous calls before it lets the event loop turn (the crawl actor
 * renews its lease and serves refreshes meanwhile). Synchronous lstat and readdir cost a fraction
 * of the thread-pool trips of their promise forms: a scan of 10,000 entries took ~4× as long so.
 */
const SCAN_SLICE_MS = 10;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Walks the tree under `start` (a namespace path), without following symbolic links. */
async function scan(root: string, start: string): Promise<Map<string, DatasetEntry>> {
  const found = new Map<string, DatasetEntry>();
  const queue = [start];
  let sliceEnd = performance.now() + SCAN_SLICE_MS;
  for (let next = 0; next < queue.length; next++) {
    if (performance.now() > sliceEnd) {
      await turn();
      sliceEnd = performance.now() + SCAN_SLICE_MS;
    }
    const nsPath = queue[next]!;
    let st;
    try {
      st = lstatSync(join(root, nsPath), { throwIfNoEntry: false });
    } catch {
      // unreadable: the next scan looks again
    }
    if (!st) continue; // gone while we looked: the next scan sees it missing
    if (st.isSymbolicLink() || (!st.isFile() && !st.isDirectory())) continue;
    const seen: DatasetEntry = {
      type: st.isDirectory() ? 'directory' : 'file', size: st.isDirectory() ? 4096 : st.size, mode: st.mode & 0o7777,
      stamp: String(st.mtimeMs), mtime: st.mtimeMs / 1000, // published as the file's own time
    };
    if (nsPath !== '/') found.set(nsPath, seen);
    if (seen.type === 'directory') {
      let names: string[] = [];
      try {
        names = readdirSync(join(root, nsPath));
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        if (/[\n\0]/.test(name)) continue; // cannot be named in the namespace
        queue.push(nsPath === '/' ? `/${name}` : `${nsPath}/${name}`);
      }
    }
  }
  return found;
}

/** Refuses to start without a DATASET_DIR that is a directory. */
export async function driver_init(driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<boolean> {
  const root = datasetDir(driver_config);
  if (root === null) {
    log_error('dataset driver: set DATASET_DIR in the driver config.json');
    return false;
  }
  try {
    return (await lstat(root)).isDirectory();
  } catch (err) {
    log_error(`dataset driver: DATASET_DIR ${root}: ${(err as Error).message}`);
    return false;
  }
}

export async function next_dataset(driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<boolean> {
  const root = datasetDir(driver_config)!;
  if (published === null) {
    published = new PublishedTree();
  } else {
    await pause.wait(rescanMs(driver_config));
  }
  if (pause.stopped) return false;
  await published.publish(await scan(root, '/'), '/');
  return true;
}

/** Re-checks one path (and what lies under it) at once. */
export async function refresh(request: DriverRequest, driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<number> {
  const root = datasetDir(driver_config)!;
  const path = request_path(request);
  if (!(await withinDataset(root, path, false))) return -Errno.EACCES;
  published ??= new PublishedTree();
  await published.publish(await scan(root, path), path);
  return 0;
}

/**
 * Is `path` (a namespace path) inside the dataset? Refuses ".." segments and, when `mustExist`,
 * anything whose real location (symbolic links resolved) is outside DATASET_DIR or is a link.
 */
async function withinDataset(root: string, path: string, mustExist: boolean): Promise<boolean> {
  if (!path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '.')) return false;
  if (!mustExist) return true;
  const [realRoot, real] = await Promise.all([realpath(root), realpath(join(root, path))]);
  // Any symbolic link on the way makes the real path differ from the one asked for.
  return real === (path === '/' ? realRoot : join(realRoot, path)) && (real === realRoot || real.startsWith(realRoot + sep));
}

/** The real location of DATASET_DIR (symbolic links resolved), looked up once per root. */
let realRootOf: { root: string; real: string } | null = null;

function realRoot(root: string): string {
  if (realRootOf?.root !== root) realRootOf = { root, real: realpathSync(root) };
  return realRootOf.real;
}

/** Where an open file really is: the kernel's name for the descriptor (Linux), else realpath. */
function realPathOf(fd: number, path: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return realpathSync(path);
  }
}

/**
 * Writes the requested byte range of the file to chunk_fd. A block is at most block_size bytes
 * of a local file: synchronous calls cost a fraction of the CPU of thread-pool trips (open, read
 * and close, and two realpath walks, each a trip). Which file was opened is checked on the open
 * descriptor itself, so a link swapped in between a check and the open cannot lead outside.
 */
export async function read(request: DriverRequest, chunk_fd: ChunkSink, driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<number> {
  const root = datasetDir(driver_config)!;
  const path = request_path(request);
  const offset = Number(request_byte_offset(request) ?? 0n);
  const len = Number(request_byte_len(request) ?? 0n);
  if (!(await withinDataset(root, path, false))) return -Errno.EACCES;
  let fd: number | null = null;
  try {
    const file = join(root, path);
    // Non-blocking: a FIFO swapped in for a published file must not hang the actor.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    // Any symbolic link on the way makes the real path differ from the one asked for.
    if (realPathOf(fd, file) !== (path === '/' ? realRoot(root) : join(realRoot(root), path))) return -Errno.EACCES;
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, offset + got);
      if (n === 0) break; // the file shrank: serve what is there
      got += n;
    }
    chunk_fd.end(got === len ? buf : buf.subarray(0, got));
    return 0;
  } catch (err) {
    return negativeErrnoOf(err);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export function driver_shutdown(): void {
  pause.stop();
}
