// Carrying out a checked POST: one driver call per chunk (PUTCHUNKS, DELETECHUNKS), a rename then
// a write (RENAME_HINT), or a refresh (an AG). The work is linear in the request: the DriverRequests
// share one block_vec array, which travels once per POST when it is large (queues/ask.ts), and at
// most CALLS_IN_FLIGHT calls of a POST are out at once, so each call's deadline starts when it is
// sent rather than behind thousands of its siblings. The first failure stops further calls.
import {
  ChunkType, DriverRequestType, encodeBlockVec, IoType, RequestType, type DriverRequest, type ManifestBlock, type Request,
} from '../proto/messages.js';
import { Errno } from '../drivers/errno.js';
import { chunkCacheKeyOfDriverRequest } from './data-url.js';
import { HttpError } from './errors.js';
import { mapLimit } from './map-limit.js';
import { randomIoContext, type ChunkCache, type ChunkResult, type DriverPipeline, type PostCalls } from './driver-pipeline.js';

/** Driver calls of one POST out at once. */
export const CALLS_IN_FLIGHT = 64;
/** Up to this many block ids ride in each DriverRequest; more are sent once per POST. */
export const INLINE_BLOCK_VEC_MAX = 64;

export interface CheckedPost {
  request: Request;
  /** The chunks cut out of the data plane, one per block (none for DELETECHUNKS and REFRESH). */
  chunks: Buffer[];
  /** False when the chunks' hashes are left to the actors that store them (see control-plane.ts). */
  hashed: boolean;
}

export interface DispatchDeps {
  pipeline: DriverPipeline;
  cache: ChunkCache;
  blockSize: number;
}

/** What every DriverRequest of a POST has in common (WIRE.md: "How a gateway fills it"). */
interface RequestBase {
  request: Request;
  ioContext: bigint;
  blockSize: bigint;
  /** The POST's block ids, one array for every call; absent when the queues carry it apart. */
  blockVec?: bigint[];
}

/** The DriverRequest for one chunk of a POST. */
function driverRequestFor(base: RequestBase, b: ManifestBlock, path: string, io: number): DriverRequest {
  const { request } = base;
  const isManifest = b.chunk_type === ChunkType.MANIFEST;
  const req: DriverRequest = {
    volume_id: request.volume_id,
    user_id: request.user_id,
    coordinator_id: request.coordinator_id,
    file_id: request.file_id,
    file_version: BigInt.asUintN(64, request.file_version),
    request_type: isManifest ? DriverRequestType.MANIFEST : DriverRequestType.BLOCK,
    path,
    io_type: io,
    io_context: base.ioContext,
    block_size: base.blockSize,
  };
  if (base.blockVec) req.block_vec = base.blockVec;
  if (isManifest) {
    req.manifest_mtime_sec = BigInt.asIntN(64, b.block_id);
    req.manifest_mtime_nsec = Number(BigInt.asIntN(32, b.block_version));
  } else {
    req.block_id = b.block_id;
    req.block_version = b.block_version;
  }
  if (io === IoType.WRITE) {
    req.offset = b.logical_offset ?? 0n;
    req.len = b.logical_len ?? 0n;
  }
  return req;
}

/** The first failure among chunk results, or 0. */
function firstError(results: (ChunkResult | undefined)[]): number {
  return results.find((r) => r !== undefined && r.rc !== 0)?.rc ?? 0;
}

const failed = (r: ChunkResult) => r.rc !== 0;

/**
 * Runs the POST's driver calls and returns the error code its Reply carries. `post.changed` tells
 * afterwards whether any call that may change the back-end was sent.
 */
export async function dispatch(p: CheckedPost, deps: DispatchDeps, post: PostCalls): Promise<number> {
  const { request } = p;
  const { pipeline } = deps;
  const blocks = request.blocks ?? [];
  const base: RequestBase = { request, ioContext: randomIoContext(), blockSize: BigInt(deps.blockSize) };
  if (request.request_type !== RequestType.REFRESH) {
    // Block ids only: a manifest chunk's block id is its mtime (a UG sends it with its last blocks).
    const ids = blocks.filter((b) => b.chunk_type !== ChunkType.MANIFEST).map((b) => b.block_id);
    if (ids.length <= INLINE_BLOCK_VEC_MAX) base.blockVec = ids;
    else post.blockVec = await pipeline.shareBlockVec(encodeBlockVec(ids), post.deadline);
  }
  try {
    switch (request.request_type) {
      case RequestType.PUTCHUNKS: {
        const results = await mapLimit(blocks, CALLS_IN_FLIGHT, (b, i) =>
          pipeline.store(driverRequestFor(base, b, request.fs_path, IoType.WRITE), p.chunks[i]!, post, p.hashed ? { known: b.hash } : { check: b.hash }), failed);
        const bad = results.findIndex((r) => r?.mismatch);
        if (bad >= 0) {
          // Only a POST of one chunk leaves its hash to the actor that stores it, and that actor ran nothing.
          post.changed = false;
          throw new HttpError(400, `block ${bad} does not match its hash`);
        }
        return firstError(results);
      }
      case RequestType.DELETECHUNKS: {
        const results = await mapLimit(blocks, CALLS_IN_FLIGHT, async (b) => {
          const req = driverRequestFor(base, b, request.fs_path, IoType.DELETE);
          const r = await pipeline.delete(req, post);
          if (r.rc === 0) await deps.cache.delete(chunkCacheKeyOfDriverRequest(req));
          return r;
        }, failed);
        return firstError(results);
      }
      case RequestType.RENAME_HINT: {
        const newPath = request.new_fs_path!;
        const manifest = blocks[0]!;
        const hint = driverRequestFor(base, manifest, request.fs_path, IoType.NONE);
        hint.request_type = DriverRequestType.RENAME_HINT;
        hint.new_path = newPath;
        const renamed = await pipeline.rename(hint, request.fs_path, newPath, post);
        if (renamed.rc !== 0) return renamed.rc;
        return (await pipeline.store(driverRequestFor(base, manifest, newPath, IoType.WRITE), p.chunks[0]!, post)).rc;
      }
      case RequestType.REFRESH: {
        // The crawl actor's driver re-checks the path and publishes what it finds; a driver
        // without refresh() answers ENOSYS in the signed reply (its crawl goes on regardless).
        if (!pipeline.has('refresh')) return -Errno.ENOSYS;
        const req: DriverRequest = {
          volume_id: request.volume_id, user_id: request.user_id, coordinator_id: request.coordinator_id,
          file_id: request.file_id, file_version: BigInt.asUintN(64, request.file_version),
          request_type: DriverRequestType.MANIFEST, path: request.fs_path, io_type: IoType.NONE, io_context: base.ioContext, block_size: base.blockSize,
        };
        return (await pipeline.call('refresh', req, post.deadline, post.rid, {}, post)).rc;
      }
      default:
        throw new HttpError(501, `request type ${request.request_type} is not handled`);
    }
  } finally {
    if (post.blockVec) pipeline.unshareBlockVec(post.blockVec);
  }
}
