// Reading a file through a user gateway: resolve the path in the namespace, fetch the manifest
// from the coordinator or else the replicas in turn and check its signature and identity, then
// fetch blocks in parallel (a bounded window), each checked against the manifest's SHA-256 or
// the AG's signed header, deserialized and kept in this UG's cache. A missing or bad chunk from
// one gateway sends the reader to the next.
import { createHash } from 'node:crypto';
import { checkPath, type NamespaceEntry } from '../queues/namespace/namespace.js';
import {
  IoType, ManifestCodec, SignatureField, SignedBlockHeaderCodec, type Manifest, type ManifestBlock,
} from '../proto/messages.js';
import { verifyRawMessage } from '../proto/signature.js';
import { chunkCacheKey, formatBlockUrl, formatManifestUrl } from './data-url.js';
import { HttpError, unavailable } from './errors.js';
import type { CacheHint } from './driver-pipeline.js';
import { ChunkRejected, type ChunkSource, type FileOf, type UgVolume } from './ug-volume.js';

/** A file opened for reading: its namespace entry and its verified manifest. */
export interface OpenFile {
  entry: NamespaceEntry;
  manifest: Manifest;
}

/** A namespace path from an application, or a 400 that says what is wrong with it. */
export function checkedPath(path: string): string {
  const problem = checkPath(path);
  if (problem) throw new HttpError(400, `${JSON.stringify(path.slice(0, 200))}: ${problem}`);
  return path;
}

function fileAddress(v: UgVolume, file: FileOf) {
  return { volume_id: v.config.gateway.volume_id, fs_path: file.path, file_id: file.file_id, file_version: file.file_version };
}

/** Tries each source in turn; the first chunk that `accept` takes wins. Every failure is named. */
async function fromFirstGood<T>(what: string, sources: ChunkSource[], fetchOne: (s: ChunkSource) => Promise<T>): Promise<T> {
  const failures: string[] = [];
  let busy = 0;
  for (const s of sources) {
    try {
      return await fetchOne(s);
    } catch (err) {
      if (err instanceof HttpError && err.status < 500) throw err;
      if (err instanceof ChunkRejected && err.busy) busy++;
      failures.push(`${s.type.toLowerCase()} ${s.id}: ${(err as Error).message}`);
    }
  }
  // Every gateway said "try again" (its Redis failing over, no driver actor yet): so do we.
  if (busy > 0 && busy === failures.length) throw unavailable(`no gateway could serve the ${what} now (${failures.join('; ')})`);
  throw new HttpError(502, `no gateway gave a valid ${what}${failures.length ? ` (${failures.join('; ')})` : ' (the volume has no gateway to read from)'}`);
}

/** GETs one chunk URL (through cdn_url); a non-200 answer is this source's failure. */
async function fetchChunk(v: UgVolume, url: string, req: Parameters<UgVolume['routeUrl']>[1]): Promise<Buffer> {
  const routed = await v.routeUrl(url, req);
  const r = await v.get(routed);
  if (r.status !== 200) throw new ChunkRejected(`GET ${routed} answered ${r.status}`, r.status === 503);
  return r.body;
}

export class UgReader {
  constructor(private readonly v: UgVolume) {}

  /** The namespace entry of a file, or a 4xx (bad path, no such file, a directory). */
  async entryOf(path: string): Promise<NamespaceEntry> {
    const entry = await this.v.deps.namespace.stat(checkedPath(path));
    if (!entry) throw new HttpError(404, `no file at ${path}`);
    if (entry.type !== 'file') throw new HttpError(400, `${path} is a directory`);
    return entry;
  }

  async open(path: string): Promise<OpenFile> {
    const entry = await this.entryOf(path);
    return { entry, manifest: await this.manifestOf(entry) };
  }

  /** The file's manifest, signed by its coordinator and naming exactly this file version. */
  async manifestOf(entry: NamespaceEntry): Promise<Manifest> {
    const v = this.v;
    const coordKey = v.coordinatorKey(entry.coordinator_id);
    const chunk = { kind: 'manifest' as const, mtime_sec: entry.manifest_mtime_sec, mtime_nsec: entry.manifest_mtime_nsec };
    const url = (base: string) => formatManifestUrl(base, { ...fileAddress(v, entry), mtime_sec: chunk.mtime_sec, mtime_nsec: chunk.mtime_nsec });
    return fromFirstGood(`manifest of ${entry.path}`, v.sourcesOf(entry), async (s) => {
      const req = v.driverRequest(entry, chunk, IoType.READ);
      let bytes = await fetchChunk(v, url(s.url), req);
      if (v.isUgFile(entry)) bytes = await v.transform('deserialize', req, bytes);
      if (!verifyRawMessage(bytes, SignatureField.Manifest, coordKey)) throw new ChunkRejected('the manifest signature does not verify with the coordinator key');
      const m = ManifestCodec.decode(bytes);
      const g = v.config.gateway;
      const mismatch = m.volume_id !== g.volume_id ? 'volume' : m.coordinator_id !== entry.coordinator_id ? 'coordinator'
        : m.file_id !== entry.file_id ? 'file id' : m.file_version !== entry.file_version ? 'file version'
          : m.size !== BigInt(entry.size) ? 'size' : (m.blocks ?? []).length !== Math.ceil(entry.size / v.blockSize) ? 'block count' : null;
      if (mismatch) throw new ChunkRejected(`the manifest's ${mismatch} does not match the namespace entry`);
      return m;
    });
  }

  /** One block's plaintext, from the cache or else the first gateway that serves a valid copy. */
  async block(file: OpenFile, index: number, hint: CacheHint = {}): Promise<Buffer> {
    const v = this.v;
    const { entry, manifest } = file;
    const b = manifest.blocks![index]!;
    const offset = index * v.blockSize;
    const len = Math.min(v.blockSize, entry.size - offset);
    const addr = { ...fileAddress(v, entry), block_id: b.block_id, block_version: b.block_version };
    const key = chunkCacheKey({ kind: 'block', ...addr });
    const hit = await v.deps.cache.get(key, hint);
    if (hit && hit.length === len) return hit;
    const chunk = { kind: 'block' as const, block_id: b.block_id, block_version: b.block_version, offset, len };
    const plain = await fromFirstGood(`block ${b.block_id} of ${entry.path}`, v.sourcesOf(entry), async (s) => {
      const req = v.driverRequest(entry, chunk, IoType.READ);
      const received = await fetchChunk(v, formatBlockUrl(s.url, addr), req);
      let bytes = this.verifiedBlock(entry, manifest, b, received);
      if (v.isUgFile(entry)) bytes = await v.transform('deserialize', req, bytes);
      if (bytes.length !== len) throw new ChunkRejected(`the block holds ${bytes.length} bytes, the manifest says ${len}`);
      return bytes;
    });
    await v.deps.cache.put(key, plain, hint);
    return plain;
  }

  /** Checks a received block: its SHA-256 against the manifest, or the AG's signed header (coordinator, signature, hash). */
  private verifiedBlock(entry: NamespaceEntry, m: Manifest, b: ManifestBlock, received: Buffer): Buffer {
    const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest();
    if (b.hash && b.hash.length > 0) {
      if (!sha(received).equals(b.hash)) throw new ChunkRejected('the block does not match its SHA-256 in the manifest');
      return received;
    }
    if (received.length < 4) throw new ChunkRejected('the signed block is shorter than its length prefix');
    const headerLen = received.readUInt32BE(0);
    if (headerLen > 4096 || 4 + headerLen > received.length) throw new ChunkRejected(`bad signed block header length ${headerLen}`);
    const raw = received.subarray(4, 4 + headerLen);
    const data = received.subarray(4 + headerLen);
    const h = SignedBlockHeaderCodec.decode(raw);
    if (h.gateway_id !== m.coordinator_id) throw new ChunkRejected(`the block is signed by gateway ${h.gateway_id}, not the coordinator`);
    if (!verifyRawMessage(raw, SignatureField.SignedBlockHeader, this.v.coordinatorKey(m.coordinator_id))) throw new ChunkRejected('the block header signature does not verify');
    if (h.volume_id !== m.volume_id || h.file_id !== entry.file_id || h.file_version !== entry.file_version
      || h.block_id !== b.block_id || h.block_version !== b.block_version) throw new ChunkRejected('the block header names another block');
    if (!sha(data).equals(Buffer.from(h.block_hash))) throw new ChunkRejected('the block does not match the hash in its signed header');
    return data;
  }

  /**
   * The bytes [start, end) of an open file, block by block, with up to ug.parallel_blocks blocks
   * fetched ahead of the one being yielded. A read larger than the cache's memory tier passes it by
   * (blocks are cached on disk only): it would only push out what is hot, and keep up to a tier's
   * worth of dropped blocks in memory until V8 next collects (measured: the UG's http actor at
   * 265 MiB while reading 1 GiB with the default 64 MiB tier).
   */
  async *range(file: OpenFile, start: number, end: number): AsyncGenerator<Buffer> {
    if (end <= start) return;
    const bs = this.v.blockSize;
    const first = Math.floor(start / bs);
    const last = Math.floor((end - 1) / bs);
    const window = this.v.config.ug.parallel_blocks;
    const hint: CacheHint = { memory: end - start <= this.v.config.cache.memory_bytes };
    const pending: Promise<Buffer>[] = [];
    let next = first;
    const fill = () => {
      while (next <= last && pending.length < window) {
        const p = this.block(file, next++, hint);
        p.catch(() => undefined); // awaited in order below; a reader that stops early must not leave it unhandled
        pending.push(p);
      }
    };
    for (let i = first; i <= last; i++) {
      fill();
      const bytes = await pending.shift()!;
      const from = i === first ? start - i * bs : 0;
      const to = i === last ? end - i * bs : bytes.length;
      yield from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to);
    }
  }
}
