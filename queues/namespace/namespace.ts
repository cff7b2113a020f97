// The volume namespace: files and directories by path, shared in Redis by every gateway of a
// volume (the role of Syndicate's metadata service). The AG's crawl actor writes it; http actors
// read it. Every write is one Lua script, so parents, children and entries never disagree, and a
// write may be fenced by the crawl lease so a deposed crawler can change nothing.
//
// Layout (volume v; the names are built in queues/names.ts):
//   sgw:vol:v:ns:e    hash  path -> entry JSON (64-bit values as strings)
//   sgw:vol:v:ns:d:P  zset  child names of directory P (score 0, lexical order)
import { randomBytes } from 'node:crypto';
import { Errno } from '../../drivers/errno.js';
import type { MetadataCommand } from '../../drivers/helpers.js';
import type { RedisClient } from '../redis.js';
import { keys } from '../names.js';
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


// KEYS: entries, parent's children, own children, lease (or a dummy)
// ARGV: op, path, name, entry JSON, lease token ('' = unfenced), is-root
// Returns 0 (changed), 2 (unchanged) or a negative errno.
const WRITE_SCRIPT = `
local op, path, name, newJson, token, isRoot = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6] == '1'
if token ~= '' and redis.call('GET', KEYS[4]) ~= token then return -${Errno.ESTALE} end
local oldJson = redis.call('HGET', KEYS[1], path)
if isRoot and not oldJson then
  oldJson = cjson.encode({type='directory', id='0', ver='0', size='4096', mode='493', mt_s='0', mt_ns='0', mm_s='0', mm_ns='0', coord='0', rttl='5000', wttl='0'})
end
if op == 'delete' then
  if not oldJson then return -${Errno.ENOENT} end
  if isRoot then return -${Errno.EINVAL} end
  if redis.call('ZCARD', KEYS[3]) > 0 then return -${Errno.ENOTEMPTY} end
  redis.call('HDEL', KEYS[1], path)
  redis.call('ZREM', KEYS[2], name)
  return 0
end
local new = cjson.decode(newJson)
if oldJson then
  if op == 'create' then return -${Errno.EEXIST} end
  local old = cjson.decode(oldJson)
  if old.type ~= new.type then return -(old.type == 'directory' and ${Errno.EISDIR} or ${Errno.ENOTDIR}) end
  if op == 'put' and old.size == new.size and old.mode == new.mode and old.rttl == new.rttl and old.wttl == new.wttl then return 2 end
  new.id = old.id
  if new.type == 'directory' then new.ver = old.ver end
  redis.call('HSET', KEYS[1], path, cjson.encode(new))
  return 0
end
if op == 'update' then return -${Errno.ENOENT} end
local parentJson = redis.call('HGET', KEYS[1], ARGV[7])
if ARGV[7] == '/' and not parentJson then parentJson = '{"type":"directory"}' end
if not parentJson then return -${Errno.ENOENT} end
if cjson.decode(parentJson).type ~= 'directory' then return -${Errno.ENOTDIR} end
redis.call('HSET', KEYS[1], path, newJson)
redis.call('ZADD', KEYS[2], 0, name)
return 0
`;

export const UNCHANGED = 2;

// The user gateway's file operations, compare-and-set on the version the writer saw, so two
// writers of one path cannot both win: the second finds a version it did not expect.
// KEYS: entries, children of path's parent, children of new path's parent (or the same)
// ARGV: op (publish | remove | rename), path, name, parent, expected version ('' = must be
//       absent), entry JSON, new path, new name, new parent
// Returns 0 or a negative errno (-ESTALE: the version changed; -EEXIST: the path appeared).
const FILE_SCRIPT = `
local op, path, name, parent, expected, newJson = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local function checkDir(p)
  if p == '/' then return 0 end
  local pj = redis.call('HGET', KEYS[1], p)
  if not pj then return -${Errno.ENOENT} end
  if cjson.decode(pj).type ~= 'directory' then return -${Errno.ENOTDIR} end
  return 0
end
local oldJson = redis.call('HGET', KEYS[1], path)
if oldJson then
  local old = cjson.decode(oldJson)
  if old.type ~= 'file' then return -${Errno.EISDIR} end
  if expected == '' then return -${Errno.EEXIST} end
  if old.ver ~= expected then return -${Errno.ESTALE} end
elseif expected ~= '' then
  return -${Errno.ESTALE}
end
if op == 'publish' then
  local rc = checkDir(parent)
  if rc ~= 0 then return rc end
  redis.call('HSET', KEYS[1], path, newJson)
  redis.call('ZADD', KEYS[2], 0, name)
  return 0
end
if not oldJson then return -${Errno.ENOENT} end
if op == 'remove' then
  redis.call('HDEL', KEYS[1], path)
  redis.call('ZREM', KEYS[2], name)
  return 0
end
if op == 'rename' then
  local newPath, newName, newParent = ARGV[7], ARGV[8], ARGV[9]
  if redis.call('HEXISTS', KEYS[1], newPath) == 1 then return -${Errno.EEXIST} end
  local rc = checkDir(newParent)
  if rc ~= 0 then return rc end
  redis.call('HDEL', KEYS[1], path)
  redis.call('ZREM', KEYS[2], name)
  redis.call('HSET', KEYS[1], newPath, newJson)
  redis.call('ZADD', KEYS[3], 0, newName)
  return 0
end
return -${Errno.EINVAL}
`;

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

/** A random signed 64-bit value: file ids and versions are random over 64 bits, as deployed. */
export function random64(signed: boolean): bigint {
  const v = randomBytes(8).readBigUInt64BE();
  return signed ? BigInt.asIntN(64, v) : v;
}

export interface Fence {
  leaseKey: string;
  token: string;
}

export class Namespace {
  constructor(private readonly redis: RedisClient, readonly volumeId: bigint) {
    redis.defineCommand('sgwNamespaceWrite', { numberOfKeys: 4, lua: WRITE_SCRIPT });
    redis.defineCommand('sgwNamespaceFile', { numberOfKeys: 3, lua: FILE_SCRIPT });
  }

  private runFileScript(path: string, newParentPath: string, args: string[]): Promise<number> {
    const run = (this.redis as unknown as Record<string, (...a: string[]) => Promise<number>>).sgwNamespaceFile!;
    return run.call(this.redis, keys.nsEntries(this.volumeId), keys.nsChildren(this.volumeId, parentOf(path)),
      keys.nsChildren(this.volumeId, newParentPath), ...args);
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
   * Applies one create/put/update/delete command. Returns 0 when the namespace changed,
   * UNCHANGED for a put that found the entry as described, or a negative errno
   * (-EEXIST, -ENOENT, -ENOTDIR, -EISDIR, -ENOTEMPTY, -EINVAL, -ESTALE when fenced out).
   */
  async apply(cmd: MetadataCommand, coordinatorId: bigint, fence: Fence | null): Promise<number> {
    if (cmd.cmd === 'finish') return 1;
    if (checkPath(cmd.path)) return -Errno.EINVAL;
    const path = cmd.path;
    const isRoot = path === ROOT;
    const now = Date.now();
    const sec = BigInt(Math.floor(now / 1000));
    const nsec = (now % 1000) * 1_000_000;
    const entry = stored({
      type: cmd.ftype, file_id: random64(false), file_version: random64(true), size: cmd.ftype === 'directory' ? 4096 : cmd.size,
      mode: cmd.mode, mtime_sec: sec, mtime_nsec: nsec, manifest_mtime_sec: sec, manifest_mtime_nsec: nsec,
      coordinator_id: coordinatorId, read_ttl: cmd.read_ttl, write_ttl: cmd.write_ttl,
    });
    const parent = parentOf(path);
    const run = (this.redis as unknown as Record<string, (...a: string[]) => Promise<number>>).sgwNamespaceWrite!;
    return run.call(
      this.redis,
      keys.nsEntries(this.volumeId), keys.nsChildren(this.volumeId, parent), keys.nsChildren(this.volumeId, path),
      fence?.leaseKey ?? keys.nsEntries(this.volumeId),
      cmd.cmd, path, nameOf(path), JSON.stringify(entry), fence?.token ?? '', isRoot ? '1' : '0', parent,
    );
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
