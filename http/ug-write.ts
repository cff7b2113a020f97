// Writing through a user gateway. A write cuts the data into blocks of the volume's block size,
// serializes and hashes each, sends them to every replica gateway in signed PUTCHUNKS batches, the
// last with a new manifest signed by this UG as coordinator, and only then publishes the new version
// in the namespace (compare-and-set on the version it replaces). The replaced version's chunks
// are deleted from the replicas after that. Rename and delete change the namespace and tell the
// replicas (RENAME_HINT, DELETECHUNKS). An acquisition gateway's files are read-only.
import { randomInt } from 'node:crypto';
import { random64, parentOf, ROOT, type NamespaceEntry } from '../queues/namespace/namespace.js';
import { Errno, errnoName } from '../drivers/errno.js';
import { make_metadata_command } from '../drivers/helpers.js';
import { ChunkType, IoType, ManifestCodec, type Manifest, type ManifestBlock } from '../proto/messages.js';
import { signMessage } from '../proto/signature.js';
import { chunkCacheKey } from './data-url.js';
import { HttpError, unavailable } from './errors.js';
import { mapLimit } from './map-limit.js';
import { isNoAnswer } from './outgoing.js';
import {
  deleteChunksFields, layOut, putChunksFields, randomNonce, renameHintFields, sendControlPlane,
  type ChunkUpload, type DataPlane, type FileRef, type RequestFields,
} from './rg-client.js';
import { checkedPath, UgReader } from './ug-read.js';
import type { FileOf, UgVolume } from './ug-volume.js';

/** What a write, rename or delete did; `warnings` name clean-up steps that failed (the operation itself succeeded). */
export interface UgResult {
  entry: NamespaceEntry;
  warnings: string[];
}

/** Maps a namespace errno to the status an application gets. */
function namespaceFailure(rc: number, path: string): HttpError {
  switch (-rc) {
    case Errno.ESTALE: return new HttpError(409, `${path} was changed by another writer meanwhile; nothing was changed`);
    case Errno.EEXIST: return new HttpError(409, `${path} exists`);
    case Errno.ENOENT: return new HttpError(404, `${path} or its parent directory does not exist`);
    case Errno.ENOTDIR: return new HttpError(409, `a parent of ${path} is a file`);
    case Errno.EISDIR: return new HttpError(409, `${path} is a directory`);
    case Errno.ENOTEMPTY: return new HttpError(409, `${path} is a directory that is not empty`);
    default: return new HttpError(400, `${path}: the namespace refused the change (${errnoName(rc)})`);
  }
}

/** A block of a byte stream as the stream's own pieces: joining them would cost a copy into fresh memory. */
interface Piecewise {
  pieces: Buffer[];
  length: number;
}

/** Cuts a byte stream into blocks of `size` bytes (the last may be shorter). */
async function* blocksOf(body: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Piecewise> {
  let pieces: Buffer[] = [];
  let have = 0;
  for await (const piece of body) {
    let rest = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (rest.length > 0) {
      const take = Math.min(size - have, rest.length);
      pieces.push(take === rest.length ? rest : rest.subarray(0, take));
      have += take;
      rest = rest.subarray(take);
      if (have === size) {
        yield { pieces, length: have };
        pieces = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield { pieces, length: have };
}


/** A fresh manifest mtime: wall-clock seconds, nanoseconds made unique with random sub-millisecond digits. */
function manifestMtime(): { sec: bigint; nsec: number } {
  const now = Date.now();
  return { sec: BigInt(Math.floor(now / 1000)), nsec: (now % 1000) * 1_000_000 + randomInt(1_000_000) };
}

/** The manifest chunk's place in a Request: block id/version carry its mtime (WIRE.md). */
function manifestBlock(mtime: { sec: bigint; nsec: number }): Omit<ManifestBlock, 'offset' | 'size' | 'hash'> {
  return { block_id: BigInt.asUintN(64, mtime.sec), block_version: BigInt(mtime.nsec), chunk_type: ChunkType.MANIFEST };
}

export class UgWriter {
  private readonly reader: UgReader;

  constructor(private readonly v: UgVolume) {
    this.reader = new UgReader(v);
  }

  private fileRef(file: FileOf): FileRef {
    const { config } = this.v;
    return {
      volume_version: config.volume.version, cert_version: config.volume.cert_version, volume_id: config.gateway.volume_id,
      coordinator_id: this.v.id, file_id: file.file_id, file_version: file.file_version, fs_path: file.path,
      user_id: config.gateway.user_id, src_gateway_id: this.v.id,
    };
  }

  /** Sends one signed request to every replica; each must answer 200 with a verified Reply, its nonce and rc 0. */
  private async toEveryReplica(what: string, fields: RequestFields, data: DataPlane | null): Promise<void> {
    const { replicas, config } = this.v;
    if (replicas.length === 0) throw new HttpError(409, 'the volume lists no replica gateway (with a url) to write to');
    const failures: string[] = [];
    let busy = 0;
    await Promise.all(replicas.map(async (rg) => {
      const nonce = randomNonce();
      try {
        const a = await sendControlPlane(rg.url, { ...fields, message_nonce: nonce }, config.gateway.private_key, data, rg.public_key, config.limits.request_timeout_ms);
        if (a.status === 503) busy++;
        if (a.status !== 200) failures.push(`rg ${rg.id}: HTTP ${a.status} ${a.body.toString().trim().slice(0, 200)}`);
        else if (!a.replyVerified || a.reply!.message_nonce !== nonce || a.reply!.gateway_id !== rg.id) failures.push(`rg ${rg.id}: the reply is not signed by it for this request`);
        else if (a.reply!.error_code !== 0) failures.push(`rg ${rg.id}: its driver answered ${errnoName(a.reply!.error_code)}`);
      } catch (err) {
        if (isNoAnswer(err)) busy++;
        failures.push(`rg ${rg.id}: ${(err as Error).message}`);
      }
    }));
    // Replicas that said "try again" (their Redis failing over, no driver actor yet): so do we.
    if (failures.length > 0 && busy === failures.length) throw unavailable(`${what} failed: ${failures.join('; ')}`);
    if (failures.length > 0) throw new HttpError(502, `${what} failed: ${failures.join('; ')}`);
  }

  /** Refuses what a UG may not change: an archive volume, an AG's file, a directory. */
  private checkWritable(entry: NamespaceEntry | null, path: string): void {
    if (this.v.config.volume.archive) throw new HttpError(403, `volume ${this.v.config.gateway.volume_id} is an archive: its files are read-only`);
    if (!entry) return;
    if (entry.type !== 'file') throw new HttpError(409, `${path} is a directory`);
    if (this.v.coordinatorType(entry.coordinator_id) === 'AG') throw new HttpError(403, `${path} is published by acquisition gateway ${entry.coordinator_id}: read-only`);
  }

  /** Creates the missing directories above path (mode 0755), like mkdir -p. */
  private async makeParents(path: string): Promise<void> {
    const dirs: string[] = [];
    for (let p = parentOf(path); p !== ROOT; p = parentOf(p)) dirs.unshift(p);
    const ns = this.v.deps.namespace;
    for (const dir of dirs) {
      const rc = await ns.apply(make_metadata_command('create', 'directory', 0o755, null, dir)!, this.v.id, null);
      if (rc !== 0 && rc !== -Errno.EEXIST) throw namespaceFailure(rc, dir);
      if (rc === -Errno.EEXIST && (await ns.stat(dir))?.type !== 'directory') throw namespaceFailure(-Errno.ENOTDIR, path);
    }
  }

  /** Signs a manifest for `file` with this UG as coordinator and serializes it. */
  private async signedManifest(file: FileOf, size: number, blocks: ManifestBlock[], mtime: { sec: bigint; nsec: number }): Promise<Buffer> {
    const g = this.v.config.gateway;
    const manifest: Manifest = {
      volume_id: g.volume_id, coordinator_id: this.v.id, owner_id: g.user_id, file_id: file.file_id, file_version: file.file_version,
      mtime_sec: mtime.sec, mtime_nsec: mtime.nsec, size: BigInt(size),
      blocks: blocks.map((b) => ({ block_id: b.block_id, block_version: b.block_version, hash: b.hash! })), signature: '',
    };
    const signed = Buffer.from(signMessage(manifest, ManifestCodec.encode, g.private_key).bytes);
    const req = this.v.driverRequest(file, { kind: 'manifest', mtime_sec: mtime.sec, mtime_nsec: mtime.nsec }, IoType.WRITE);
    return this.v.transform('serialize', req, signed);
  }

  /** Writes a whole file from a byte stream and publishes it as the path's new version. */
  async write(path: string, body: AsyncIterable<Uint8Array>, mode = 0o644): Promise<UgResult> {
    checkedPath(path);
    if (path === ROOT) throw new HttpError(400, 'cannot write to /');
    const ns = this.v.deps.namespace;
    const old = await ns.stat(path);
    this.checkWritable(old, path);
    const file: FileOf = { path, file_id: old?.file_id ?? random64(false), file_version: random64(true), coordinator_id: this.v.id };
    const bs = this.v.blockSize;
    const perBatch = Math.max(1, Math.floor(this.v.config.ug.batch_bytes / bs));
    const sent: ManifestBlock[] = [];
    let size = 0;
    let batch: Piecewise[] = [];
    const posting: Promise<void>[] = [];
    let mtime = { sec: 0n, nsec: 0 }; // the manifest's, set by the last flush
    // Up to ug.posts_in_flight batches are on their way while the next is read and serialized (the
    // replicas fsync each chunk: overlap hides it). The last batch carries the new manifest too:
    // it names blocks whose hashes are known by then, and no reader can find it before the
    // namespace publishes this version, which waits for every batch; a small file is one POST.
    const flush = async (last: boolean) => {
      const first = sent.length;
      const raw = batch;
      batch = [];
      const serialize = this.v.deps.pipeline.has('serialize');
      const uploads = await mapLimit(raw, this.v.config.ug.parallel_blocks, async ({ pieces, length }, i): Promise<ChunkUpload> => {
        const id = first + i;
        const block = { block_id: BigInt(id), block_version: random64(true), chunk_type: ChunkType.BLOCK, logical_offset: BigInt(id * bs), logical_len: BigInt(length) };
        if (!serialize) return { block, bytes: pieces };
        const req = this.v.driverRequest(file, { kind: 'block', block_id: block.block_id, block_version: block.block_version, offset: id * bs, len: length }, IoType.WRITE);
        return { block, bytes: await this.v.transform('serialize', req, Buffer.concat(pieces, length)) };
      });
      const laid = layOut(uploads as ChunkUpload[]); // no stop: every item ran
      sent.push(...laid.blocks);
      if (last) {
        mtime = manifestMtime();
        const manifest = await this.signedManifest(file, size, sent, mtime);
        const end = laid.blocks.reduce((at, b) => at + b.size!, 0n);
        const m = layOut([{ block: manifestBlock(mtime), bytes: manifest }], end);
        sent.push(...m.blocks); // cleaned up with the blocks should the write fail
        laid.blocks.push(...m.blocks);
        laid.pieces.push(...m.pieces);
      }
      if (posting.length >= this.v.config.ug.posts_in_flight) await posting.shift();
      const what = last ? `PUTCHUNKS of ${path} (with its manifest)` : `PUTCHUNKS of ${path}`;
      const post = this.toEveryReplica(what, putChunksFields(this.fileRef(file), laid.blocks), laid.pieces);
      post.catch(() => undefined); // awaited in turn, or at the end
      posting.push(post);
    };
    try {
      for await (const block of blocksOf(body, bs)) {
        // A full batch goes once a block follows it; the last one waits for the manifest.
        if (batch.length >= perBatch) await flush(false);
        size += block.length;
        batch.push(block);
      }
      await flush(true);
      await Promise.all(posting);
      await this.makeParents(path);
      const entry: NamespaceEntry = {
        path, type: 'file', file_id: file.file_id, file_version: file.file_version, size, mode,
        mtime_sec: mtime.sec, mtime_nsec: mtime.nsec, manifest_mtime_sec: mtime.sec, manifest_mtime_nsec: mtime.nsec,
        coordinator_id: this.v.id, read_ttl: 5000, write_ttl: 0,
      };
      const rc = await ns.publishFile(entry, old?.file_version ?? null);
      if (rc !== 0) throw namespaceFailure(rc, path);
      const warnings = old ? await this.dropVersion(old) : [];
      return { entry, warnings };
    } catch (err) {
      // The new version never became visible: its chunks are garbage (best effort).
      await Promise.allSettled(posting);
      if (sent.length > 0) await this.toEveryReplica('clean-up', deleteChunksFields(this.fileRef(file), sent), null).catch(() => undefined);
      throw err;
    }
  }

  /** DELETECHUNKS of every chunk of a replaced or deleted version; failures become warnings. */
  private async dropVersion(old: NamespaceEntry, manifest?: Manifest): Promise<string[]> {
    if (!this.v.isUgFile(old)) return [];
    try {
      const m = manifest ?? (await this.reader.manifestOf(old));
      const blocks: ManifestBlock[] = (m.blocks ?? []).map((b) => ({ block_id: b.block_id, block_version: b.block_version, chunk_type: ChunkType.BLOCK }));
      blocks.push(manifestBlock({ sec: m.mtime_sec, nsec: m.mtime_nsec }));
      // This UG's cached copies go too (they could never be asked for again: keys name the version).
      const addr = { volume_id: this.v.config.gateway.volume_id, fs_path: old.path, file_id: old.file_id, file_version: old.file_version };
      await Promise.all((m.blocks ?? []).map((b) => this.v.deps.cache.delete(chunkCacheKey({ kind: 'block', ...addr, block_id: b.block_id, block_version: b.block_version })).catch(() => false)));
      await this.toEveryReplica(`DELETECHUNKS of ${old.path}`, deleteChunksFields(this.fileRef(old), blocks), null);
      return [];
    } catch (err) {
      return [`the chunks of version ${old.file_version} of ${old.path} were not all deleted: ${(err as Error).message}`];
    }
  }

  /** Deletes a file (its chunks too) or an empty directory. */
  async remove(path: string): Promise<UgResult> {
    checkedPath(path);
    if (path === ROOT) throw new HttpError(400, 'cannot delete /');
    const ns = this.v.deps.namespace;
    const entry = await ns.stat(path);
    if (!entry) throw new HttpError(404, `no entry at ${path}`);
    if (this.v.config.volume.archive) this.checkWritable(entry, path);
    if (entry.type === 'directory') {
      const rc = await ns.apply(make_metadata_command('delete', 'directory', null, null, path)!, this.v.id, null);
      if (rc !== 0) throw namespaceFailure(rc, path);
      return { entry, warnings: [] };
    }
    this.checkWritable(entry, path);
    const manifest = await this.reader.manifestOf(entry); // before anything changes: it names the chunks to delete
    const rc = await ns.removeFile(path, entry.file_version);
    if (rc !== 0) throw namespaceFailure(rc, path);
    return { entry, warnings: await this.dropVersion(entry, manifest) };
  }

  /** Moves a file to a new path: a fresh manifest in a RENAME_HINT to every replica, then the namespace. */
  async rename(path: string, newPath: string): Promise<UgResult> {
    checkedPath(path);
    checkedPath(newPath);
    if (path === ROOT || newPath === ROOT) throw new HttpError(400, 'cannot rename / or onto /');
    if (path === newPath) throw new HttpError(400, 'the new path is the old path');
    const ns = this.v.deps.namespace;
    const entry = await ns.stat(path);
    if (!entry) throw new HttpError(404, `no entry at ${path}`);
    if (entry.type !== 'file') throw new HttpError(400, `${path} is a directory: only files can be renamed`);
    this.checkWritable(entry, path);
    if (await ns.stat(newPath)) throw new HttpError(409, `${newPath} exists`);
    const m = await this.reader.manifestOf(entry);
    const mtime = manifestMtime();
    const moved: FileOf = { path: newPath, file_id: entry.file_id, file_version: entry.file_version, coordinator_id: this.v.id };
    const manifest = await this.signedManifest(moved, entry.size, (m.blocks ?? []).map((b) => ({ ...b })), mtime);
    const hint = layOut([{ block: manifestBlock(mtime), bytes: manifest }]);
    await this.toEveryReplica(`RENAME_HINT of ${path}`, renameHintFields(this.fileRef(entry), newPath, hint.blocks[0]!), hint.pieces);
    await this.makeParents(newPath);
    const renamed: NamespaceEntry = { ...entry, path: newPath, coordinator_id: this.v.id, manifest_mtime_sec: mtime.sec, manifest_mtime_nsec: mtime.nsec };
    const rc = await ns.renameFile(path, entry.file_version, renamed);
    if (rc !== 0) throw namespaceFailure(rc, newPath);
    // The old manifest is superseded; the blocks are shared with the new one.
    const old = [manifestBlock({ sec: m.mtime_sec, nsec: m.mtime_nsec })];
    const warnings = await this.toEveryReplica(`DELETECHUNKS of the old manifest of ${path}`, deleteChunksFields(this.fileRef(renamed), old), null)
      .then(() => [], (err: Error) => [err.message]);
    return { entry: renamed, warnings };
  }
}
