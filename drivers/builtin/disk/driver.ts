// The built-in replica gateway (RG) driver: each chunk is one file under STORAGE_DIR, at the
// layout Syndicate back-ends use (request_to_storage_path). Copy this folder to start a driver:
// it works as it is, wherever it is copied.
//
// Every method returns 0 or a negative errno. Chunks are immutable and any call may be retried,
// so each method must be safe to run twice.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsync, linkSync, mkdirSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import {
  Errno, log_debug, log_error, negativeErrnoOf, request_to_storage_path,
  type ChunkSink, type DriverConfig, type DriverRequest, type DriverSecrets,
} from 'sgw';

/** STORAGE_DIR from config.json (a relative one was made absolute against the driver folder when it was published). */
function storageDir(config: DriverConfig): string | null {
  const dir = config.STORAGE_DIR;
  return typeof dir === 'string' && dir !== '' ? resolve(dir) : null;
}

function chunkPath(request: DriverRequest, config: DriverConfig): string | null {
  const dir = storageDir(config);
  return dir === null ? null : join(dir, request_to_storage_path(request));
}

/** Refuses to start without a usable STORAGE_DIR. */
export async function driver_init(driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<boolean> {
  const dir = storageDir(driver_config);
  if (dir === null) {
    log_error('disk driver: config.json must set STORAGE_DIR');
    return false;
  }
  try {
    await mkdir(dir, { recursive: true });
    return true;
  } catch (err) {
    log_error('disk driver: cannot create STORAGE_DIR %s: %s', dir, (err as Error).message);
    return false;
  }
}

/** Writes the stored chunk to chunk_fd; -ENOENT when there is no such chunk (HTTP 404). */
export async function read_chunk(request: DriverRequest, chunk_fd: ChunkSink, driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<number> {
  const path = chunkPath(request, driver_config);
  if (path === null) return -Errno.EINVAL;
  try {
    // A chunk is at most a block: one synchronous read from local disk costs a fraction of
    // the CPU of a stream or four thread-pool trips. A missing chunk fails before anything
    // reaches chunk_fd. (A driver for a network back-end would await its reads instead.)
    const chunk = readFileSync(path);
    if (chunk.length > chunk_fd.limit) return -Errno.EFBIG;
    chunk_fd.end(chunk);
    return 0;
  } catch (err) {
    log_debug('disk driver: read %s: %s', path, (err as Error).message);
    return negativeErrnoOf(err);
  }
}

const fsyncFd = promisify(fsync);

/**
 * Opens a new file, making its folder first if there is none (only the first chunk of a folder
 * pays). Also returns the folders whose entries changed: the file's, and the parent of every
 * folder made.
 */
function createFile(path: string): { fd: number; folders: string[] } {
  const folder = dirname(path);
  try {
    return { fd: openSync(path, 'w'), folders: [folder] };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const first = mkdirSync(folder, { recursive: true });
    const folders = [folder];
    if (first) for (let d = folder; d !== dirname(first); d = dirname(d)) folders.push(dirname(d));
    return { fd: openSync(path, 'w'), folders };
  }
}

/**
 * Flushes folders' entries to disk. fsync of a file makes its bytes durable, not the name that
 * leads to them: a name linked after it, or a folder made for it, survives a power loss only once
 * its folder is flushed too.
 */
async function syncFolders(folders: string[]): Promise<void> {
  await Promise.all(folders.map(async (folder) => {
    const fd = openSync(folder, 'r');
    try {
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  }));
}

function writeAll(fd: number, chunk: Buffer): void {
  for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at, chunk.length - at, at);
}

/** Whether the chunk is stored at path already: not at all, with these bytes, or with others. */
function stored(path: string, chunk: Buffer): 'absent' | 'same' | 'different' {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  try {
    if (fstatSync(fd).size !== chunk.length) return 'different';
    const bytes = Buffer.allocUnsafe(chunk.length);
    for (let at = 0; at < bytes.length;) {
      const n = readSync(fd, bytes, at, bytes.length - at, at);
      if (n === 0) return 'different';
      at += n;
    }
    return bytes.equals(chunk) ? 'same' : 'different';
  } finally {
    closeSync(fd);
  }
}

/** A write of a chunk that is stored with other bytes: chunks are immutable, the stored ones stay. */
function refuseRewrite(path: string): number {
  log_debug('disk driver: %s is stored with other bytes; refusing to replace it', path);
  return -Errno.EEXIST;
}

/**
 * Stores the chunk atomically: readers see the whole chunk or none of it, never a torn file.
 * Chunks are immutable: a chunk stored already is never replaced. A retry with the same bytes
 * succeeds without writing again; other bytes get -EEXIST (the stored chunk is read back only
 * then, when its file exists). The file appears by link(2), which fails rather than replace a file
 * a concurrent writer put there first.
 * Only the fsync waits in the thread pool; the other steps are quick on a local disk and run
 * inline: each thread-pool trip costs wake-ups and context switches, and with six of them per
 * chunk those cost the write actor more than the copy into the page cache.
 */
export async function write_chunk(request: DriverRequest, chunk: Buffer, driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<number> {
  const path = chunkPath(request, driver_config);
  if (path === null) return -Errno.EINVAL;
  const temp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  try {
    // A 200 on a write promises the chunk is on disk under its name: its bytes, then its name.
    const before = stored(path, chunk);
    if (before === 'different') return refuseRewrite(path);
    if (before === 'same') {
      // An earlier attempt may have linked it and stopped before flushing its folder.
      await syncFolders([dirname(path)]);
      return 0;
    }
    const { fd, folders } = createFile(temp);
    try {
      writeAll(fd, chunk);
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (stored(path, chunk) !== 'same') return refuseRewrite(path);
    }
    await syncFolders(folders);
    return 0;
  } catch (err) {
    log_error('disk driver: write %s: %s', path, (err as Error).message);
    return negativeErrnoOf(err);
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // never made, or already gone
    }
  }
}

/** Removes the chunk; a chunk that is already gone counts as deleted (the call may be a retry). */
export async function delete_chunk(request: DriverRequest, driver_config: DriverConfig, _driver_secrets: DriverSecrets): Promise<number> {
  const path = chunkPath(request, driver_config);
  if (path === null) return -Errno.EINVAL;
  try {
    await rm(path, { force: true });
    return 0;
  } catch (err) {
    log_error('disk driver: delete %s: %s', path, (err as Error).message);
    return negativeErrnoOf(err);
  }
}

/** Nothing to do: this layout is keyed by file id, not by path. */
export function rename_file(_request: DriverRequest, _old_path: string, _new_path: string, _driver_config: DriverConfig, _driver_secrets: DriverSecrets): number {
  return 0;
}
