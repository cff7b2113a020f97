// GET /DATA/... on an acquisition gateway. Manifests are made for each request from the
// namespace entry (fresh block versions every time, no hashes, signed by the AG); blocks come
// from the driver's read() as the byte range of the file, wrapped as
// `u32be len | SignedBlockHeader | bytes` and signed, then serialized and cached.
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { GatewayConfig } from '../proto/config/config.js';
import type { Namespace, NamespaceEntry } from '../queues/namespace/namespace.js';
import { ManifestCodec, SignedBlockHeaderCodec, type Manifest } from '../proto/messages.js';
import { signMessage, signMessageAsync } from '../proto/signature.js';
import { DataUrlMemo, type ChunkAddress } from './data-url.js';
import { HttpError } from './errors.js';
import { randomIoContext, type ChunkCache, type DriverPipeline } from './driver-pipeline.js';
import { driverRequestForGet, readFailure, sendCached, sendChunk, sendRead } from './get-chunk.js';

export interface AgGetDeps {
  config: GatewayConfig;
  namespace: Namespace;
  cache: ChunkCache;
  pipeline: DriverPipeline;
}

/** Blocks of a file of `size` bytes: ceil(size / block_size). */
export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** A fresh signed 64-bit block version (random: two GETs in one millisecond still differ). */
function freshVersion(): bigint {
  return BigInt.asIntN(64, randomIoContext());
}

export function agManifest(entry: NamespaceEntry, config: GatewayConfig): Uint8Array {
  const n = blockCount(entry.size, config.gateway.block_size);
  const manifest: Manifest = {
    volume_id: config.gateway.volume_id,
    coordinator_id: config.gateway.id,
    owner_id: config.gateway.user_id,
    file_id: entry.file_id,
    file_version: entry.file_version,
    mtime_sec: entry.mtime_sec,
    mtime_nsec: entry.mtime_nsec,
    size: BigInt(entry.size),
    blocks: Array.from({ length: n }, (_, i) => ({ block_id: BigInt(i), block_version: freshVersion() })),
    signature: '',
  };
  return signMessage(manifest, ManifestCodec.encode, config.gateway.private_key).bytes;
}

/** `u32be header length | SignedBlockHeader | bytes`, the header signed by the AG (WIRE.md), in the thread pool. */
export async function signedBlock(addr: Extract<ChunkAddress, { kind: 'block' }>, bytes: Buffer, config: GatewayConfig): Promise<Buffer> {
  const header = (await signMessageAsync({
    volume_id: addr.volume_id, file_id: addr.file_id, file_version: addr.file_version,
    block_id: addr.block_id, block_version: addr.block_version,
    block_hash: createHash('sha256').update(bytes).digest(), gateway_id: config.gateway.id, signature: '',
  }, SignedBlockHeaderCodec.encode, config.gateway.private_key)).bytes;
  const block = Buffer.allocUnsafe(4 + header.length + bytes.length);
  block.writeUInt32BE(header.length);
  block.set(header, 4);
  block.set(bytes, 4 + header.length);
  return block;
}

export function getAgChunk(deps: AgGetDeps) {
  const { config } = deps;
  const blockSize = config.gateway.block_size;
  const urls = new DataUrlMemo();
  return async (ctx: Context): Promise<void> => {
    const parsed = urls.parse(ctx.path);
    const addr = parsed.addr;
    if (addr.volume_id !== config.gateway.volume_id) throw new HttpError(404, `volume ${addr.volume_id} is not served here`);
    // A block URL names one signed block of one file version (its block version is unique to one
    // manifest): a cached copy answers it without asking the namespace.
    const key = addr.kind === 'block' ? parsed.key : null;
    if (key && (await sendCached(ctx, deps.cache, key))) return;
    const entry = await deps.namespace.stat(addr.fs_path);
    if (!entry || entry.type !== 'file') throw new HttpError(404, `no file at ${addr.fs_path}`);
    if (entry.file_id !== addr.file_id || entry.file_version !== addr.file_version) {
      // The file changed since the reader looked it up: it must stat again.
      throw new HttpError(404, `${addr.fs_path} is now file ${entry.file_id.toString(16).toUpperCase()} version ${entry.file_version}`);
    }
    const req = driverRequestForGet(addr, config.gateway.user_id, blockSize);
    req.coordinator_id = config.gateway.id;
    const deadline = ctx.state.deadline as number;
    const rid = ctx.state.requestId as string;
    if (addr.kind === 'manifest') {
      ctx.state.cache = 'generated';
      const r = await deps.pipeline.serialize(req, Buffer.from(agManifest(entry, config)), deadline, rid);
      if (r.rc !== 0) throw readFailure(r, 'manifest');
      // Each GET makes a new manifest: nobody may keep it.
      return sendChunk(ctx, r.chunk ?? Buffer.alloc(0), 'no-store');
    }
    if (addr.block_id >= BigInt(blockCount(entry.size, blockSize))) throw new HttpError(404, `${addr.fs_path} has no block ${addr.block_id}`);
    const offset = Number(addr.block_id) * blockSize;
    const len = Math.min(blockSize, entry.size - offset);
    req.len = BigInt(len);
    await sendRead(ctx, deps.cache, key!, 'block', () => deps.pipeline.read(req, deadline, rid, (bytes) => {
      if (bytes.length > len) throw new HttpError(500, `the driver returned ${bytes.length} bytes for a ${len}-byte block`);
      return signedBlock(addr, bytes, config);
    }));
  };
}
