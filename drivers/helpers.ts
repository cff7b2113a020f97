// The driver helper API (Syndicate's `syndicate.util.gateway`), with its original snake_case names:
// they are the driver authors' contract. This module is bundled into every driver (`import ... from
// 'sgw'`), so it imports only node builtins and drivers/errno.ts — never proto/messages.ts, whose
// protobufjs schema loading would bloat every bundle and break in a CommonJS bundle.
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { format } from 'node:util';
import { Errno } from './errno.js';
import type { DriverRequest } from '../proto/messages.js';

export { Errno, negativeErrnoOf } from './errno.js';
export type { DriverRequest, Manifest, ManifestBlock } from '../proto/messages.js';

/** DriverRequest.io_type values (same as proto/messages.ts; a test keeps the two equal). */
export const IoType = { NONE: 0, READ: 1, WRITE: 2, SYNC: 3, DELETE: 4 } as const;
/** DriverRequest.request_type values (same as proto/messages.ts; a test keeps the two equal). */
export const DriverRequestType = { BLOCK: 1, MANIFEST: 2, RENAME_HINT: 3 } as const;

/** The driver's public config.json, parsed. */
export type DriverConfig = Record<string, unknown>;
/** The driver's secrets.json, unsealed with the gateway's private key and parsed. */
export type DriverSecrets = Record<string, unknown>;

/** What serialize/deserialize return: the transformed chunk, or a negative errno. */
export type ChunkResult = Buffer | Uint8Array | number;

/** A replica gateway driver: every method is optional (see seeds/001 for when each is called). */
export interface RgDriver {
  read_chunk?(request: DriverRequest, chunk_fd: ChunkSink, driver_config: DriverConfig, driver_secrets: DriverSecrets): number | Promise<number>;
  write_chunk?(request: DriverRequest, chunk: Buffer, driver_config: DriverConfig, driver_secrets: DriverSecrets): number | Promise<number>;
  delete_chunk?(request: DriverRequest, driver_config: DriverConfig, driver_secrets: DriverSecrets): number | Promise<number>;
  rename_file?(request: DriverRequest, old_path: string, new_path: string, driver_config: DriverConfig, driver_secrets: DriverSecrets): number | Promise<number>;
  serialize?(request: DriverRequest, chunk: Buffer, driver_config: DriverConfig, driver_secrets: DriverSecrets): ChunkResult | Promise<ChunkResult>;
  deserialize?(request: DriverRequest, chunk: Buffer, driver_config: DriverConfig, driver_secrets: DriverSecrets): ChunkResult | Promise<ChunkResult>;
  driver_init?(driver_config: DriverConfig, driver_secrets: DriverSecrets): boolean | Promise<boolean>;
  driver_shutdown?(): void | Promise<void>;
}

export type RequestKind = 'block' | 'manifest' | 'rename_hint';

/** "block" | "manifest" | "rename_hint"; throws on any other request_type (a gateway bug). */
export function request_type(req: DriverRequest): RequestKind {
  switch (req.request_type) {
    case DriverRequestType.BLOCK: return 'block';
    case DriverRequestType.MANIFEST: return 'manifest';
    case DriverRequestType.RENAME_HINT: return 'rename_hint';
    default: throw new TypeError(`invalid driver request type ${String(req.request_type)}`);
  }
}

/**
 * Where back-ends store a chunk: "{volume_id}/{FILE_ID_HEX}/{block_id}/{block_version}" for a
 * block, "{volume_id}/{FILE_ID_HEX}/manifest/{sec}.{nsec}" for a manifest or rename hint.
 */
export function request_to_storage_path(req: DriverRequest): string {
  const prefix = `${req.volume_id}/${req.file_id.toString(16).toUpperCase()}`;
  if (request_type(req) === 'block') return `${prefix}/${req.block_id ?? 0n}/${req.block_version ?? 0n}`;
  return `${prefix}/manifest/${req.manifest_mtime_sec ?? 0n}.${req.manifest_mtime_nsec ?? 0}`;
}

function isDataIo(req: DriverRequest): boolean {
  return req.io_type === IoType.READ || req.io_type === IoType.WRITE;
}

/** The byte offset of a READ or WRITE in the file; null for other I/O. */
export function request_byte_offset(req: DriverRequest): bigint | null {
  return isDataIo(req) ? req.offset ?? 0n : null;
}

/** The byte length of a READ or WRITE; null for other I/O. */
export function request_byte_len(req: DriverRequest): bigint | null {
  return isDataIo(req) ? req.len ?? 0n : null;
}

/** The file's path in the volume. */
export function request_path(req: DriverRequest): string {
  return req.path;
}

/** The file's new path (rename hints); null when the request carries none. */
export function request_new_path(req: DriverRequest): string | null {
  return req.new_path ?? null;
}

/** Joins paths like Python's os.path.join, except that later parts never restart from "/". */
export function path_join(a: string, ...parts: string[]): string {
  let out = a;
  for (const raw of parts) {
    const part = raw.replace(/^\/+|\/+$/g, '');
    if (part === '') {
      if (!out.endsWith('/')) out += '/';
    } else out = out === '' || out.endsWith('/') ? out + part : `${out}/${part}`;
  }
  return out;
}

export const METADATA_COMMANDS = ['create', 'put', 'update', 'delete', 'finish'] as const;
export type MetadataCommandName = (typeof METADATA_COMMANDS)[number];
export type MetadataFileType = 'file' | 'directory';

/** One command an AG driver's next_dataset() hands to the gateway (put = create or update). */
export interface MetadataCommand {
  cmd: MetadataCommandName;
  ftype: MetadataFileType;
  mode: number;
  size: number;
  path: string;
  read_ttl: number;
  write_ttl: number;
  /** The entry's modification time, seconds since the epoch (fractions kept to the microsecond); absent: when the gateway applies it. */
  mtime?: number;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/**
 * Builds a metadata command, or returns null (and logs why) when it is malformed: unknown cmd or
 * ftype, a path that is not absolute or holds a newline or NUL, a bad mode, size, TTL or mtime.
 * A directory's size is always 4096. As in the seed, `finish` needs nothing else, `delete` needs no
 * mode or size, and a directory needs no size (pass null). `mtime` (seconds since the epoch, an
 * addition to Syndicate's signature) is the time the entry shows; null: the time it is applied.
 */
export function make_metadata_command(
  cmd: string, ftype: string | null, mode: number | null, size: number | null, path: string | null, read_ttl = 5000, write_ttl = 0,
  mtime: number | null = null,
): MetadataCommand | null {
  if (cmd === 'finish') return { cmd: 'finish', ftype: 'directory', mode: 0, size: 0, path: '', read_ttl, write_ttl };
  const deleting = cmd === 'delete';
  const reason =
    !(METADATA_COMMANDS as readonly string[]).includes(cmd) ? `unknown cmd ${JSON.stringify(cmd)}`
    : ftype !== 'file' && ftype !== 'directory' ? `unknown ftype ${JSON.stringify(ftype)}`
    : typeof path !== 'string' || !path.startsWith('/') ? `path ${JSON.stringify(path)} is not absolute`
    : /[\n\0]/.test(path) ? `path ${JSON.stringify(path)} holds a newline or NUL`
    : !(deleting && mode === null) && (!isCount(mode) || mode > 0o7777) ? `bad mode ${String(mode)}`
    : ftype === 'file' && !deleting && !isCount(size) ? `bad size ${String(size)}`
    : !isCount(read_ttl) || !isCount(write_ttl) ? `bad ttl ${String(read_ttl)}/${String(write_ttl)}`
    : mtime !== null && (typeof mtime !== 'number' || !Number.isFinite(mtime)) ? `bad mtime ${String(mtime)}`
    : null;
  if (reason) {
    log_error(`make_metadata_command: ${reason}`);
    return null;
  }
  const command: MetadataCommand = {
    cmd: cmd as MetadataCommandName, ftype: ftype as MetadataFileType, mode: mode ?? 0,
    size: ftype === 'directory' ? 4096 : (size ?? 0), path: path as string, read_ttl, write_ttl,
  };
  if (mtime !== null && !deleting) command.mtime = mtime;
  return command;
}

/** Re-checks a command that reached the gateway (a driver may build one by hand). */
export function checkMetadataCommand(v: unknown): MetadataCommand | null {
  if (typeof v !== 'object' || v === null) return null;
  const c = v as Record<string, unknown>;
  const num = (x: unknown, dflt: number | null) => (x === undefined || x === null ? dflt : (x as number));
  return make_metadata_command(
    c.cmd as string, (c.ftype ?? null) as string | null, num(c.mode, null), num(c.size, null), (c.path ?? null) as string | null,
    num(c.read_ttl, 5000) as number, num(c.write_ttl, 0) as number, num(c.mtime, null),
  );
}

const depth = (p: string) => (p === '/' ? 0 : p.split('/').length - 1);
/** Parents before children; deletions use the reverse. */
const shallowFirst = (a: string, b: string) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0);
const inside = (p: string, under: string) => under === '/' || p === under || p.startsWith(`${under}/`);

/** One entry of the dataset an AG driver publishes (see PublishedTree). */
export interface DatasetEntry {
  type: MetadataFileType;
  /** A file's bytes (a directory's is ignored). */
  size: number;
  mode: number;
  /** Changes whenever the content may have: a file's mtime, an object's ETag and date. */
  stamp: string;
  /** The modification time to publish, seconds since the epoch; absent: the time of publishing. */
  mtime?: number;
}

/**
 * What the gateway has accepted of an AG driver's dataset, by namespace path, and the commands that
 * bring it to a fresh scan. Only accepted commands change it, so a refused one is sent again after
 * the next scan.
 */
export class PublishedTree {
  readonly entries = new Map<string, DatasetEntry>();

  /**
   * Hands the gateway the difference between what it has under `under` and `scanned` (a fresh scan
   * of `under`): deletions deepest first, then new entries (put) and changed files (update, a new
   * version) parents first. Commands go out without waiting for each answer (up to
   * PUBLISH_WINDOW at once): the gateway applies them in the order sent, so a parent is in place
   * before its children, and a crawl is not one Redis round trip per entry.
   */
  async publish(scanned: Map<string, DatasetEntry>, under = '/'): Promise<void> {
    const known = this.entries;
    const gone = [...known.keys()].filter((p) => inside(p, under) && (!scanned.has(p) || scanned.get(p)!.type !== known.get(p)!.type));
    await inOrder(gone.sort(shallowFirst).reverse(), async (p) => {
      const rc = await sendEntry('delete', p, known.get(p)!);
      if (rc === 0 || rc === -Errno.ENOENT) known.delete(p);
    });
    const changed = [...scanned.keys()].sort(shallowFirst).filter((p) => {
      const now = scanned.get(p)!;
      const old = known.get(p);
      return !(old && old.size === now.size && old.mode === now.mode && old.stamp === now.stamp);
    });
    await inOrder(changed, async (p) => {
      const now = scanned.get(p)!;
      // A changed file gets a new version (update); a new one, or one the gateway lost, is put.
      let rc = known.has(p) && now.type === 'file' ? await sendEntry('update', p, now) : await sendEntry('put', p, now);
      if (rc === -Errno.ENOENT) rc = await sendEntry('put', p, now);
      if (rc === 0) known.set(p, now);
    });
  }
}

/** Commands of one publish on their way at once. */
const PUBLISH_WINDOW = 256;

/** Starts send(item) for each item in order, at most PUBLISH_WINDOW unfinished at a time. */
async function inOrder<T>(items: T[], send: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  for (const item of items) {
    const p = send(item).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= PUBLISH_WINDOW) await Promise.race(running);
  }
  await Promise.all(running);
}

/** The pause of an AG driver's next_dataset between two scans, which driver_shutdown cuts short. */
export class ScanPause {
  #wake: (() => void) | null = null;
  /** Set by stop(): next_dataset should return false. */
  stopped = false;

  /** Waits `ms`, or until stop(). */
  async wait(ms: number): Promise<void> {
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => { clearTimeout(timer); resolve(); };
    });
    this.#wake = null;
  }

  stop(): void {
    this.stopped = true;
    this.#wake?.();
  }
}

function sendEntry(cmd: 'put' | 'update' | 'delete', path: string, e: DatasetEntry): Promise<number> {
  const command = make_metadata_command(cmd, e.type, cmd === 'delete' ? null : e.mode, e.type === 'file' ? e.size : null, path, 5000, 0, e.mtime ?? null);
  return command ? crawl(command) : Promise.resolve(-Errno.EINVAL);
}

/** Where the crawl actor listens for commands; a global, because a driver bundle carries its own copy of this module. */
export const CRAWL_HANDLER = Symbol.for('sgw.crawl');

type CrawlHandler = (cmd: MetadataCommand) => Promise<number>;

/**
 * Hands one command to the gateway: 0 ok, 1 after finish, or a negative errno (-ENOENT update or
 * delete of a missing entry or missing parent, -EEXIST create of an existing one, -EINVAL a
 * malformed command, -ENOSYS outside a crawl actor).
 */
export async function crawl(cmd: MetadataCommand | null): Promise<number> {
  const handler = (globalThis as Record<symbol, CrawlHandler | undefined>)[CRAWL_HANDLER];
  if (!handler) return -Errno.ENOSYS;
  const checked = checkMetadataCommand(cmd);
  if (!checked) return -Errno.EINVAL;
  return handler(checked);
}

// One JSON line per call (pino's level numbers), so a driver message never splits or garbles the
// gateway's log stream, whatever the message contains.
function writeLogLine(level: number, args: unknown[]): void {
  const line = JSON.stringify({ level, time: Date.now(), pid: process.pid, src: 'driver', msg: format(...args) });
  try {
    process.stderr.write(line + '\n');
  } catch {
    // a closed stderr must not take the driver call down with it
  }
}

/** Logs an error line to stderr. */
export function log_error(...args: unknown[]): void {
  writeLogLine(50, args);
}

/** Logs a debug line to stderr, only when the environment sets SGW_DRIVER_DEBUG. */
export function log_debug(...args: unknown[]): void {
  if (process.env.SGW_DRIVER_DEBUG) writeLogLine(20, args);
}

// What the chassis tells a driver about a running call, by its request object, kept where every
// copy of this module finds it: each driver bundle carries its own copy, the chassis uses sgw's.
function perCall<T>(name: string): WeakMap<DriverRequest, T> {
  const g = globalThis as Record<symbol, WeakMap<DriverRequest, T> | undefined>;
  return (g[Symbol.for(name)] ??= new WeakMap());
}

const callDeadlines = perCall<number>('sgw.callDeadlines');
/** The SHA-256 of the chunk a running write call carries, when the actor already checked it. */
const chunkHashes = perCall<Uint8Array>('sgw.chunkSha256');

/** For the chassis: the driver method given `request` must answer by `at` (epoch ms). */
export function setCallDeadline(request: DriverRequest, at: number): void {
  callDeadlines.set(request, at);
}

/**
 * Epoch ms by which the driver method handed `request` should have returned: a driver that retries
 * stops there (and answers -ETIMEDOUT, or what its last attempt gave). Shortly after it the chassis
 * answers -ETIMEDOUT (504) without the driver and recycles the actor. Undefined outside a call
 * that has one (driver_init, next_dataset, a direct call in a test).
 */
export function callDeadline(request: DriverRequest): number | undefined {
  return callDeadlines.get(request);
}

/** An AbortSignal that fires at callDeadline(request), for fetch or an SDK; undefined without a deadline. */
export function callSignal(request: DriverRequest): AbortSignal | undefined {
  const at = callDeadline(request);
  return at === undefined ? undefined : AbortSignal.timeout(Math.max(0, Math.floor(at - Date.now())));
}

/** For the chassis: the chunk handed to the driver method with `request` has this SHA-256 (checked). */
export function setChunkSha256(request: DriverRequest, sha256: Uint8Array): void {
  chunkHashes.set(request, sha256);
}

/**
 * The SHA-256 of the chunk write_chunk was handed with `request`, when the actor checked it before
 * the call (it always does for a PUTCHUNKS chunk): a driver whose back-end wants the hash (an S3
 * request's signature, a content address) need not hash the chunk again. Undefined otherwise.
 */
export function chunkSha256(request: DriverRequest): Uint8Array | undefined {
  return chunkHashes.get(request);
}

export interface ChunkSinkOptions {
  /** Most bytes the sink accepts; a write past it fails with EFBIG. Default 64 MiB. */
  limit?: number;
}

export const DEFAULT_CHUNK_LIMIT = 64 * 1024 * 1024;

/**
 * The `chunk_fd` of read_chunk: a Writable that keeps everything written to it in memory.
 * A driver may `chunk_fd.write(buf)` or `await pipeline(createReadStream(p), chunk_fd)`.
 * Writes are taken synchronously, so bytes() is complete as soon as the driver's method returns.
 * A write past the limit fails with an error whose code is 'EFBIG'; the sink then reports it in
 * `errored` instead of crashing the process (it listens to its own 'error' event).
 */
export class ChunkSink extends Writable {
  readonly limit: number;
  #parts: Buffer[] = [];
  #length = 0;

  constructor(options: ChunkSinkOptions = {}) {
    super({ decodeStrings: true });
    this.limit = options.limit ?? DEFAULT_CHUNK_LIMIT;
    this.on('error', () => { /* kept in this.errored for whoever runs the driver */ });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#length + chunk.length > this.limit) {
      const err = Object.assign(new Error(`chunk is larger than ${this.limit} bytes`), { code: 'EFBIG', errno: -Errno.EFBIG });
      callback(err);
      return;
    }
    this.#parts.push(chunk);
    this.#length += chunk.length;
    callback();
  }

  /** Bytes written so far. */
  get byteLength(): number {
    return this.#length;
  }

  /**
   * Ends the sink if the driver did not, waits until every write landed, and returns the bytes;
   * rejects with the sink's error (EFBIG past the limit) instead of waiting forever.
   */
  async collect(): Promise<Buffer> {
    if (this.errored) throw this.errored;
    if (!this.writableEnded) this.end();
    await finished(this);
    return this.bytes();
  }

  /** Everything written so far, as one Buffer. */
  bytes(): Buffer {
    if (this.#parts.length > 1) this.#parts = [Buffer.concat(this.#parts, this.#length)];
    return this.#parts[0] ?? Buffer.alloc(0);
  }
}
