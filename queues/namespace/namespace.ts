// The volume namespace: files and directories by path, shared in Redis by every gateway of a
// volume (the role of Syndicate's metadata service). The AG's crawl actor and user gateways write
// it; http actors read it. Every write is one Lua script (queues/lua/namespace-*.lua), so parents,
// children and entries never disagree, and a write may be fenced by the crawl lease so a deposed
// crawler can change nothing. A write is acknowledged once the replicas the policy asks for have
// it (replicas.ts).
//
// Layout (volume v, all in the slot of the tag {vol.v}; the names are built in queues/names.ts):
//   sgw:{vol.v}:ns:e    hash  path -> entry JSON (64-bit values as strings)
//   sgw:{vol.v}:ns:d:P  zset  child names of directory P (score 0, lexical order)
import { randomBytes } from 'node:crypto';
import { Errno } from '../../drivers/errno.js';
import type { MetadataCommand } from '../../drivers/helpers.js';
import type { RedisClient } from '../redis.js';
import { keys } from '../names.js';
import { NO_WAIT, replicatedScript, type ReplicationPolicy } from '../replicas.js';
import { WriteBatches, type Fence } from './write-batch.js';
import { ConfigError, type GatewayConfig } from '../../proto/config/config.js';

export type EntryType = 'file' | 'directory';

export interface NamespaceEntry {
  path: string;
  type: EntryType;
  file_id: bigint;
  file_version: bigint;
  size: number;
  mode: number;
  mtime_sec: bigint;
  mtime_nsec: number;
  manifest_mtime_sec: bigint;
  manifest_mtime_nsec: number;
  coordinator_id: bigint;
  read_ttl: number;
  write_ttl: number;
}

/** What is stored: the same fields with 64-bit values as decimal strings (Lua numbers are doubles). */
interface StoredEntry {
  type: EntryType;
  id: string;
  ver: string;
  size: string;
  mode: string;
  mt_s: string;
  mt_ns: string;
  mm_s: string;
  mm_ns: string;
  coord: string;
  rttl: string;
  wttl: string;
}

export const ROOT = '/';

/** A namespace path: absolute, no empty, "." or ".." segments, no NUL/newline, no trailing "/". */
export function checkPath(path: string): string | null {
  if (typeof path !== 'string' || !path.startsWith('/')) return 'the path is not absolute';
  if (path === ROOT) return null;
  if (/[\0\n\r]/.test(path)) return 'the path holds a NUL or newline';
  if (Buffer.byteLength(path) > 4096) return 'the path is longer than 4096 bytes';
  for (const seg of path.slice(1).split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return `the path has a bad segment ${JSON.stringify(seg)}`;
    if (Buffer.byteLength(seg) > 255) return 'a path segment is longer than 255 bytes';
  }
  return null;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? ROOT : path.slice(0, i);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}


/** What a crawl `put` returns when it found the entry as described (namespace-write.lua). */
export const UNCHANGED = 2;

function stored(e: Omit<NamespaceEntry, 'path'>): StoredEntry {
  return {
    type: e.type, id: String(e.file_id), ver: String(e.file_version), size: String(e.size), mode: String(e.mode),
    mt_s: String(e.mtime_sec), mt_ns: String(e.mtime_nsec), mm_s: String(e.manifest_mtime_sec), mm_ns: String(e.manifest_mtime_nsec),
    coord: String(e.coordinator_id), rttl: String(e.read_ttl), wttl: String(e.write_ttl),
  };
}

function entryOf(path: string, json: string): NamespaceEntry {
  const s = JSON.parse(json) as StoredEntry;
  return {
    path, type: s.type, file_id: BigInt(s.id), file_version: BigInt(s.ver), size: Number(s.size), mode: Number(s.mode),
    mtime_sec: BigInt(s.mt_s), mtime_nsec: Number(s.mt_ns), manifest_mtime_sec: BigInt(s.mm_s), manifest_mtime_nsec: Number(s.mm_ns),
    coordinator_id: BigInt(s.coord), read_ttl: Number(s.rttl), write_ttl: Number(s.wttl),
  };
}

const ROOT_ENTRY = (): NamespaceEntry => ({
  path: ROOT, type: 'directory', file_id: 0n, file_version: 0n, size: 4096, mode: 0o755, mtime_sec: 0n, mtime_nsec: 0,
  manifest_mtime_sec: 0n, manifest_mtime_nsec: 0, coordinator_id: 0n, read_ttl: 5000, write_ttl: 0,
});

/** Seconds since the epoch as whole seconds and nanoseconds (to the microsecond a double holds). */
function timeOf(seconds: number): { sec: bigint; nsec: number } {
  const sec = Math.floor(seconds);
  return { sec: BigInt(sec), nsec: Math.min(999_999_999, Math.round((seconds - sec) * 1e6) * 1000) };
}

/** Random bytes drawn at once and used 8 at a time, each once (a call to randomBytes per value was ~10% of a crawl's CPU). */
let randomPool = Buffer.alloc(0);
let randomAt = 0;

/** A random signed 64-bit value: file ids and versions are random over 64 bits, as deployed. */
export function random64(signed: boolean): bigint {
  if (randomAt + 8 > randomPool.length) {
    randomPool = randomBytes(4096);
    randomAt = 0;
  }
  const v = randomPool.readBigUInt64BE(randomAt);
  randomAt += 8;
  return signed ? BigInt.asIntN(64, v) : v;
}

export type { Fence };

export interface NamespaceWrites {
  /** How many replicas must have a change before it is acknowledged (default: none). */
  replication?: ReplicationPolicy;
  /**
   * The connection changes go through (default: the reading one). WAIT holds up everything
   * behind it on its connection, so a writer that waits for replicas should have its own.
   */
  writer?: RedisClient;
}

export class Namespace {
  private readonly writer: RedisClient;
  private readonly replication: ReplicationPolicy;
  private readonly batches: WriteBatches;

  constructor(private readonly redis: RedisClient, readonly volumeId: bigint, writes: NamespaceWrites = {}) {
    this.writer = writes.writer ?? redis;
    this.replication = writes.replication ?? NO_WAIT;
    this.batches = new WriteBatches(this.writer, this.replication, keys.nsEntries(volumeId));
  }

  private async runFileScript(path: string, newParentPath: string, args: string[]): Promise<number> {
    return Number(await replicatedScript(this.writer, this.replication, 'namespaceFile', [
      keys.nsEntries(this.volumeId), keys.nsChildren(this.volumeId, parentOf(path)), keys.nsChildren(this.volumeId, newParentPath),
    ], args));
  }

  /**
   * Publishes a file version at entry.path: a new file when `replaces` is null (-EEXIST if the
   * path exists), else only while the path still holds version `replaces` (-ESTALE otherwise).
   * The parent must be a directory (-ENOENT, -ENOTDIR); a directory at the path: -EISDIR.
   */
  publishFile(entry: NamespaceEntry, replaces: bigint | null): Promise<number> {
    if (checkPath(entry.path) || entry.path === ROOT || entry.type !== 'file') return Promise.resolve(-Errno.EINVAL);
    const p = entry.path;
    return this.runFileScript(p, parentOf(p), ['publish', p, nameOf(p), parentOf(p), replaces === null ? '' : String(replaces), JSON.stringify(stored(entry))]);
  }

  /** Removes the file at path while it still holds `version` (-ESTALE otherwise). */
  removeFile(path: string, version: bigint): Promise<number> {
    if (checkPath(path) || path === ROOT) return Promise.resolve(-Errno.EINVAL);
    return this.runFileScript(path, parentOf(path), ['remove', path, nameOf(path), parentOf(path), String(version), '']);
  }

  /** Moves the file at path (still at `version`) to renamed.path, which must not exist, as `renamed`. */
  renameFile(path: string, version: bigint, renamed: NamespaceEntry): Promise<number> {
    const to = renamed.path;
    if (checkPath(path) || checkPath(to) || path === ROOT || to === ROOT || path === to) return Promise.resolve(-Errno.EINVAL);
    return this.runFileScript(path, parentOf(to), [
      'rename', path, nameOf(path), parentOf(path), String(version), JSON.stringify(stored(renamed)), to, nameOf(to), parentOf(to),
    ]);
  }

  async stat(path: string): Promise<NamespaceEntry | null> {
    if (checkPath(path)) return null;
    const json = await this.redis.hget(keys.nsEntries(this.volumeId), path);
    if (json) return entryOf(path, json);
    return path === ROOT ? ROOT_ENTRY() : null;
  }

  /** Children of a directory in name order, `limit` at a time after the name `after`. */
  async list(path: string, after: string | null, limit: number): Promise<{ entries: NamespaceEntry[]; next: string | null }> {
    const range = await this.redis.zrangebylex(keys.nsChildren(this.volumeId, path), after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, limit + 1);
    const names = range.slice(0, limit);
    if (names.length === 0) return { entries: [], next: null };
    const paths = names.map((n) => (path === ROOT ? `/${n}` : `${path}/${n}`));
    const jsons = await this.redis.hmget(keys.nsEntries(this.volumeId), ...paths);
    const entries = paths.flatMap((p, i) => (jsons[i] ? [entryOf(p, jsons[i]!)] : []));
    return { entries, next: range.length > limit ? names[names.length - 1]! : null };
  }

  /**
   * Applies one create/put/update/delete command (with the others applied in the same turn of the
   * event loop, in one script call). Returns 0 when the namespace changed,
   * UNCHANGED for a put that found the entry as described, or a negative errno
   * (-EEXIST, -ENOENT, -ENOTDIR, -EISDIR, -ENOTEMPTY, -EINVAL, -ESTALE when fenced out).
   */
  async apply(cmd: MetadataCommand, coordinatorId: bigint, fence: Fence | null): Promise<number> {
    if (cmd.cmd === 'finish') return 1;
    if (checkPath(cmd.path)) return -Errno.EINVAL;
    const path = cmd.path;
    const isRoot = path === ROOT;
    const now = timeOf(Date.now() / 1000);
    // The entry shows the time the command gives (a file's own mtime); its manifest is new now.
    const mtime = cmd.mtime === undefined ? now : timeOf(cmd.mtime);
    const entry = stored({
      type: cmd.ftype, file_id: random64(false), file_version: random64(true), size: cmd.ftype === 'directory' ? 4096 : cmd.size,
      mode: cmd.mode, mtime_sec: mtime.sec, mtime_nsec: mtime.nsec, manifest_mtime_sec: now.sec, manifest_mtime_nsec: now.nsec,
      coordinator_id: coordinatorId, read_ttl: cmd.read_ttl, write_ttl: cmd.write_ttl,
    });
    const parent = parentOf(path);
    // Commands applied together go out as one batch (write-batch.ts), in this order.
    return this.batches.write({
      keys: [keys.nsChildren(this.volumeId, parent), keys.nsChildren(this.volumeId, path)],
      args: [cmd.cmd, path, nameOf(path), JSON.stringify(entry), isRoot ? '1' : '0', parent, cmd.mtime === undefined ? '0' : '1'],
    }, fence);
  }
}

/** The JSON a person or a user gateway sees for an entry (64-bit values as decimal strings). */
export function entryJson(e: NamespaceEntry): Record<string, unknown> {
  return {
    path: e.path, type: e.type, file_id: e.file_id.toString(16).toUpperCase(), file_version: String(e.file_version),
    size: e.size, mode: `0${e.mode.toString(8)}`, mtime: { sec: String(e.mtime_sec), nsec: e.mtime_nsec },
    manifest_mtime: { sec: String(e.manifest_mtime_sec), nsec: e.manifest_mtime_nsec },
    coordinator_id: String(e.coordinator_id), read_ttl: e.read_ttl, write_ttl: e.write_ttl,
  };
}

/**
 * Records this AG as its volume's one acquisition gateway, or refuses (a volume may have at most
 * one: drivers never have to settle write conflicts between crawlers).
 */
export async function claimAcquisitionGateway(redis: RedisClient, config: GatewayConfig): Promise<void> {
  if (config.gateway.type !== 'AG') return;
  const key = keys.volumeAg(config.gateway.volume_id);
  const mine = String(config.gateway.id);
  const set = await redis.set(key, mine, 'NX');
  const holder = set === 'OK' ? mine : await redis.get(key);
  if (holder !== mine) {
    throw new ConfigError(`volume ${config.gateway.volume_id} already has acquisition gateway ${holder}; a volume may have at most one`
      + ` (if that gateway is gone for good: redis-cli DEL ${key})`);
  }
}
