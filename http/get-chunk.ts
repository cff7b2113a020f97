// GET /DATA/...: a cached chunk is answered without touching a driver; a miss goes
// read (-> serialize) through the driver queues and lands in the cache on the way out.
import type { Context } from 'koa';
import { DriverRequestType, IoType, type DriverRequest } from '../proto/messages.js';
import { Errno } from '../drivers/errno.js';
import { DataUrlMemo, type ChunkAddress } from './data-url.js';
import { HttpError } from './errors.js';
import { randomIoContext, type ChunkCache, type ChunkResult, type DriverPipeline } from './driver-pipeline.js';

export interface GetChunkDeps {
  volumeId: bigint;
  userId: bigint;
  blockSize: number;
  cache: ChunkCache;
  pipeline: DriverPipeline;
}

/** The DriverRequest a GET asks the read driver with (WIRE.md: "How a gateway fills it"). */
export function driverRequestForGet(addr: ChunkAddress, userId: bigint, blockSize: number): DriverRequest {
  const req: DriverRequest = {
    volume_id: addr.volume_id,
    user_id: userId,
    coordinator_id: 0n, // a GET does not say who coordinates the file
    file_id: addr.file_id,
    file_version: BigInt.asUintN(64, addr.file_version),
    request_type: addr.kind === 'block' ? DriverRequestType.BLOCK : DriverRequestType.MANIFEST,
    path: addr.fs_path,
    io_type: IoType.READ,
    io_context: randomIoContext(),
    block_size: BigInt(blockSize),
  };
  return setChunkFields(req, addr.kind === 'block'
    ? { ...addr, offset: BigInt.asUintN(64, addr.block_id * BigInt(blockSize)), len: blockSize }
    : addr);
}

/** Which chunk a DriverRequest is about: a block and its byte range, or a manifest by its mtime. */
export type ChunkFields =
  | { kind: 'block'; block_id: bigint; block_version: bigint; offset: bigint | number; len: bigint | number }
  | { kind: 'manifest'; mtime_sec: bigint; mtime_nsec: number };

/** Fills the block or manifest fields of a DriverRequest (WIRE.md: "How a gateway fills it"). */
export function setChunkFields(req: DriverRequest, chunk: ChunkFields): DriverRequest {
  if (chunk.kind === 'block') {
    req.block_id = chunk.block_id;
    req.block_version = chunk.block_version;
    req.offset = BigInt(chunk.offset);
    req.len = BigInt(chunk.len);
  } else {
    req.manifest_mtime_sec = chunk.mtime_sec;
    req.manifest_mtime_nsec = chunk.mtime_nsec;
    req.offset = 0n;
    req.len = 0n;
  }
  return req;
}

/** Maps a failed driver result of a read to its HTTP status (WIRE.md). */
export function readFailure(r: ChunkResult, what: string): HttpError {
  if (r.rc === -Errno.ENOENT) return new HttpError(404, `${what} not found`);
  if (r.rc === -Errno.EACCES || r.rc === -Errno.EPERM) return new HttpError(403, `the driver refused to read ${what}`);
  if (r.rc === -Errno.ETIMEDOUT) return new HttpError(504, `the driver timed out reading ${what}`);
  return new HttpError(500, `the driver failed reading ${what} (rc ${r.rc}${r.error ? `: ${r.error}` : ''})`);
}

/** Chunks are immutable: by default any cache between us and the reader may keep them for good. */
export function sendChunk(ctx: Context, bytes: Buffer, cacheControl = 'public, max-age=31536000, immutable'): void {
  ctx.status = 200;
  // The header itself, not ctx.type: Koa would look the type up in its MIME table on every answer.
  ctx.set('Content-Type', 'application/octet-stream');
  ctx.set('Cache-Control', cacheControl);
  ctx.body = bytes;
}

export function getChunk(deps: GetChunkDeps) {
  const urls = new DataUrlMemo();
  return async (ctx: Context): Promise<void> => {
    const { addr, key } = urls.parse(ctx.path);
    if (addr.volume_id !== deps.volumeId) throw new HttpError(404, `volume ${addr.volume_id} is not served here`);
    if (ctx.get('If-Modified-Since')) {
      ctx.status = 304;
      return;
    }
    if (await sendCached(ctx, deps.cache, key)) return;
    const req = driverRequestForGet(addr, deps.userId, deps.blockSize);
    await sendRead(ctx, deps.cache, key, addr.kind === 'block' ? 'block' : 'manifest',
      () => deps.pipeline.read(req, ctx.state.deadline as number, ctx.state.requestId as string));
  };
}

/** Answers from the cache, if it holds the chunk; false on a miss. */
export async function sendCached(ctx: Context, cache: ChunkCache, key: string): Promise<boolean> {
  const hit = await cache.get(key);
  if (!hit) return false;
  ctx.state.cache = 'hit';
  sendChunk(ctx, hit);
  return true;
}

/** After a miss: runs `read` (the driver pipeline), caches and answers its bytes. */
export async function sendRead(ctx: Context, cache: ChunkCache, key: string, what: string, read: () => Promise<ChunkResult>): Promise<void> {
  ctx.state.cache = 'miss';
  const r = await read();
  if (r.rc !== 0) throw readFailure(r, what);
  const bytes = r.chunk ?? Buffer.alloc(0);
  await cache.put(key, bytes);
  sendChunk(ctx, bytes);
}
