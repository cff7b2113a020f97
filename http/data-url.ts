// The data-plane URL grammar shared by every gateway (server side parses, client side formats):
//
//   {base}/DATA/{volume_id}{fs_path}.{FILE_ID_HEX}.{file_version}/{block_id}.{block_version}
//   {base}/DATA/{volume_id}{fs_path}.{FILE_ID_HEX}.{file_version}/manifest.{mtime_sec}.{mtime_nsec}
//
// Decisions (the original Syndicate code formats fs_path raw and never says how it decodes):
// - Base prefix: any prefix is accepted; the address starts after the FIRST segment that is exactly
//   `DATA`. A gateway's base path must therefore not itself contain a `DATA` segment
//   (formatBlockUrl/formatManifestUrl refuse such a base).
// - Percent-decoding: the pathname is split at raw `/` first, then each segment is decoded on its
//   own, so `%2F` can never create a separator and `%2e%2e` is checked as the `..` it decodes to.
//   Decoding is lenient, as the original sent names unescaped: a `%` not followed by two hex digits
//   is kept literally. Decoded segments must not contain `/`, NUL or other control characters, and
//   must not be `.` or `..` (nor may a file name be). Raw whitespace, control characters, `?` and
//   `#` are refused: a pathname never carries them (a query string must be stripped by the caller).
// - Repeated and trailing `/` are collapsed.
// - File id: upper- or lower-case hex accepted (1–16 digits), always formatted upper-case.
//   Decimal numbers: 1–20 digits, optional `-` only on signed fields, no `+`, range-checked.
// - Formatting percent-encodes only what cannot appear raw in a path segment, so ordinary names
//   go out byte-for-byte as the original formatted them.
import type { DriverRequest } from '../proto/messages.js';

export interface FileAddress {
  volume_id: bigint;
  /** Absolute path of the file: starts with `/`, no empty, `.` or `..` segments. */
  fs_path: string;
  file_id: bigint;
  file_version: bigint;
}

export type ChunkAddress = FileAddress & (
  | { kind: 'block'; block_id: bigint; block_version: bigint }
  | { kind: 'manifest'; mtime_sec: bigint; mtime_nsec: number }
);
export type BlockAddress = Extract<ChunkAddress, { kind: 'block' }>;
export type ManifestAddress = Extract<ChunkAddress, { kind: 'manifest' }>;

/** A data-plane URL that does not follow the grammar; the message says which part is wrong. */
export class BadUrlError extends Error {
  override name = 'BadUrlError';
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const NSEC_MAX = 999_999_999;

// Characters that cannot be in a raw request path: whitespace/control, and query/fragment marks.
const RAW_FORBIDDEN = /[\u0000-\u0020\u007f?#]/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
// RFC 3986 pchar minus pct-encoded: these may stay raw in a path segment.
const SEGMENT_SAFE = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]*$/;
const BASE_HAS_DATA_SEGMENT = /^(?:[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*)?(?:\/.*)?\/DATA(?:\/|$)/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const GRAMMAR = '{base}/DATA/{volume_id}{fs_path}.{FILE_ID_HEX}.{file_version}/{block_id}.{block_version}'
  + ' or .../manifest.{mtime_sec}.{mtime_nsec}';

/** Quotes a URL component for an error message, short and on one line. */
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text);
}

function bad(problem: string): BadUrlError {
  return new BadUrlError(`bad data URL: ${problem}`);
}

function decodePercentRun(run: string): string {
  const bytes = new Uint8Array(run.length / 3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16);
  try {
    return utf8.decode(bytes);
  } catch {
    throw bad(`percent-encoding ${quote(run)} is not valid UTF-8`);
  }
}

function decodeSegment(raw: string): string {
  if (raw.indexOf('%') < 0) return raw;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // A stray '%' (the original sent names unescaped) stays literal; %XX runs still decode.
    decoded = raw.replace(PERCENT_RUN, decodePercentRun);
  }
  if (decoded.indexOf('/') >= 0) throw bad(`path segment ${quote(raw)} encodes a '/'`);
  if (CONTROL.test(decoded)) throw bad(`path segment ${quote(raw)} encodes NUL or a control character`);
  return decoded;
}

function dotSegmentProblem(segment: string, what: string): string | null {
  if (segment === '..') return `'..' is not allowed as a ${what}`;
  if (segment === '.') return `'.' is not allowed as a ${what}`;
  return null;
}

function checkNotDotSegment(segment: string, what: string): void {
  const problem = dotSegmentProblem(segment, what);
  if (problem) throw bad(problem);
}

/** Longest fs_path accepted, in UTF-8 bytes (Linux's PATH_MAX), and longest name in it (NAME_MAX). */
export const FS_PATH_MAX_BYTES = 4096;
export const FS_NAME_MAX_BYTES = 255;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What is wrong with an fs_path, or null: the rules a path parsed out of a data URL obeys, for
 * paths that arrive otherwise (a POST's signed Request). Absolute; no empty, `.` or `..` segment;
 * no NUL or other control character; well-formed Unicode; at most FS_PATH_MAX_BYTES, and
 * FS_NAME_MAX_BYTES per segment. `/` itself only with allowRoot (a directory, never a file).
 */
export function fsPathProblem(fsPath: string, allowRoot = false): string | null {
  if (typeof fsPath !== 'string' || fsPath[0] !== '/') return 'is not absolute (must start with \'/\')';
  if (fsPath === '/') return allowRoot ? null : 'names no file';
  if (fsPath.length > FS_PATH_MAX_BYTES || Buffer.byteLength(fsPath) > FS_PATH_MAX_BYTES) return `is longer than ${FS_PATH_MAX_BYTES} bytes`;
  if (CONTROL.test(fsPath)) return 'contains NUL or a control character';
  if (LONE_SURROGATE.test(fsPath)) return 'is not well-formed Unicode';
  for (const segment of fsPath.slice(1).split('/')) {
    if (segment === '') return 'has an empty segment';
    const dots = dotSegmentProblem(segment, 'path segment');
    if (dots) return dots;
    if (Buffer.byteLength(segment) > FS_NAME_MAX_BYTES) return `has a segment longer than ${FS_NAME_MAX_BYTES} bytes`;
  }
  return null;
}

// Numbers are scanned by hand: BigInt(string) costs ~10x BigInt(number), and most ids and
// versions in a URL are short, so values of up to 15 digits go through a double exactly.
function parseDecimal(text: string, signed: boolean, what: string): bigint {
  if (text === '') throw bad(`${what} is empty`);
  const negative = text.charCodeAt(0) === 45; // '-'
  const first = negative ? 1 : 0;
  const digits = text.length - first;
  const kind = signed ? 'a decimal integer' : 'an unsigned decimal integer';
  if ((negative && !signed) || digits === 0 || digits > 20) throw bad(`${what} ${quote(text)} is not ${kind}`);
  let small = 0;
  for (let i = first; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) throw bad(`${what} ${quote(text)} is not ${kind}`);
    small = small * 10 + d;
  }
  if (digits <= 15) return BigInt(negative ? -small : small);
  const value = BigInt(text);
  if (signed ? value < I64_MIN || value > I64_MAX : value > U64_MAX) {
    throw bad(`${what} ${quote(text)} is out of range for ${signed ? 'int64' : 'uint64'}`);
  }
  return value;
}

function parseFileId(text: string): bigint {
  if (text === '') throw bad('file id is empty');
  if (text.length > 16) throw bad(`file id ${quote(text)} is longer than 16 hex digits (uint64)`);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i) | 0x20; // folds A-F onto a-f; digits are unchanged
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) throw bad(`file id ${quote(text)} is not hexadecimal`);
  }
  return text.length <= 13 ? BigInt(parseInt(text, 16)) : BigInt(`0x${text}`);
}

function parseNsec(text: string): number {
  if (text === '') throw bad('manifest mtime_nsec is empty');
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9 || i >= 9) throw bad(`manifest mtime_nsec ${quote(text)} is not a decimal in [0, ${NSEC_MAX}]`);
    value = value * 10 + d;
  }
  return value;
}

/**
 * Parses the path of a data-plane GET (without query string) into the chunk it addresses.
 * @throws BadUrlError naming the offending part
 */
export function parseDataUrl(pathname: string): ChunkAddress {
  const forbidden = RAW_FORBIDDEN.exec(pathname);
  if (forbidden) {
    const ch = forbidden[0];
    throw bad(ch === '?' || ch === '#'
      ? `the path contains ${quote(ch)}; pass the path without query string or fragment`
      : 'the path contains whitespace or a control character');
  }
  const segments: string[] = [];
  let dataAt = -1;
  for (const raw of pathname.split('/')) {
    if (raw === '') continue; // collapses repeated, leading and trailing '/'
    const segment = decodeSegment(raw);
    checkNotDotSegment(segment, 'path segment');
    if (dataAt < 0 && segment === 'DATA') dataAt = segments.length;
    segments.push(segment);
  }
  if (dataAt < 0) throw bad(`no /DATA/ segment; expected ${GRAMMAR}`);

  // After DATA: volume id, directories..., name.FILEID.version, chunk.
  const first = dataAt + 1;
  const count = segments.length - first;
  if (count < 3) {
    const missing = count === 0 ? 'volume id' : count === 1 ? 'file path' : 'chunk (block or manifest) segment';
    throw bad(`missing ${missing}; expected ${GRAMMAR}`);
  }
  const volume_id = parseDecimal(segments[first]!, false, 'volume id');

  const fileSegment = segments[segments.length - 2]!;
  const versionDot = fileSegment.lastIndexOf('.');
  const idDot = versionDot > 0 ? fileSegment.lastIndexOf('.', versionDot - 1) : -1;
  if (idDot < 0) throw bad(`file segment ${quote(fileSegment)} is not name.FILEID.version`);
  const name = fileSegment.slice(0, idDot);
  if (name === '') throw bad(`file segment ${quote(fileSegment)} has an empty file name`);
  checkNotDotSegment(name, 'file name');
  const file_id = parseFileId(fileSegment.slice(idDot + 1, versionDot));
  const file_version = parseDecimal(fileSegment.slice(versionDot + 1), true, 'file version');

  const dirs = segments.slice(first + 1, segments.length - 2);
  const fs_path = dirs.length === 0 ? `/${name}` : `/${dirs.join('/')}/${name}`;
  const pathProblem = fsPathProblem(fs_path);
  if (pathProblem) throw bad(`fs_path ${quote(fs_path)} ${pathProblem}`);

  const chunk = segments[segments.length - 1]!;
  if (chunk.startsWith('manifest.')) {
    const rest = chunk.slice('manifest.'.length);
    const dot = rest.indexOf('.');
    if (dot < 0) throw bad(`manifest segment ${quote(chunk)} is not manifest.{mtime_sec}.{mtime_nsec}`);
    const mtime_sec = parseDecimal(rest.slice(0, dot), true, 'manifest mtime_sec');
    const mtime_nsec = parseNsec(rest.slice(dot + 1));
    return { volume_id, fs_path, file_id, file_version, kind: 'manifest', mtime_sec, mtime_nsec };
  }
  const dot = chunk.indexOf('.');
  if (dot < 0) throw bad(`chunk segment ${quote(chunk)} is neither {block_id}.{block_version} nor manifest.{sec}.{nsec}`);
  const block_id = parseDecimal(chunk.slice(0, dot), false, 'block id');
  const block_version = parseDecimal(chunk.slice(dot + 1), true, 'block version');
  return { volume_id, fs_path, file_id, file_version, kind: 'block', block_id, block_version };
}

// ---- formatting (clients) ----

function checkUnsigned(value: bigint, what: string): void {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) throw new RangeError(`${what} must be a uint64 bigint, got ${String(value)}`);
}

function checkSigned(value: bigint, what: string): void {
  if (typeof value !== 'bigint' || value < I64_MIN || value > I64_MAX) throw new RangeError(`${what} must be an int64 bigint, got ${String(value)}`);
}

function encodeSegment(segment: string): string {
  if (SEGMENT_SAFE.test(segment)) return segment;
  try {
    return encodeURIComponent(segment);
  } catch {
    throw new RangeError(`path segment ${quote(segment)} is not well-formed Unicode`);
  }
}

function encodeFsPath(fsPath: string): string {
  const problem = fsPathProblem(fsPath);
  if (problem) throw new RangeError(`fs_path ${quote(String(fsPath))} ${problem}`);
  let out = '';
  for (const part of fsPath.slice(1).split('/')) out += `/${encodeSegment(part)}`;
  return out;
}

function fileUrlPrefix(base: string, addr: FileAddress): string {
  const trimmed = base.replace(/\/+$/, '');
  if (BASE_HAS_DATA_SEGMENT.test(trimmed)) throw new RangeError(`base URL ${quote(base)} must not contain a DATA path segment`);
  checkUnsigned(addr.volume_id, 'volume_id');
  checkUnsigned(addr.file_id, 'file_id');
  checkSigned(addr.file_version, 'file_version');
  return `${trimmed}/DATA/${addr.volume_id}${encodeFsPath(addr.fs_path)}.${formatFileId(addr.file_id)}.${addr.file_version}`;
}

/** The file id as it appears in URLs and storage paths: upper-case hex, no padding. */
export function formatFileId(fileId: bigint): string {
  return fileId.toString(16).toUpperCase();
}

/** URL of a block; `base` is the gateway's URL (scheme, host, optional path), with or without trailing '/'. */
export function formatBlockUrl(base: string, addr: FileAddress & { block_id: bigint; block_version: bigint }): string {
  checkUnsigned(addr.block_id, 'block_id');
  checkSigned(addr.block_version, 'block_version');
  return `${fileUrlPrefix(base, addr)}/${addr.block_id}.${addr.block_version}`;
}

/** URL of a manifest; `base` as for formatBlockUrl. */
export function formatManifestUrl(base: string, addr: FileAddress & { mtime_sec: bigint; mtime_nsec: number }): string {
  checkSigned(addr.mtime_sec, 'mtime_sec');
  if (!Number.isInteger(addr.mtime_nsec) || addr.mtime_nsec < 0 || addr.mtime_nsec > NSEC_MAX) {
    throw new RangeError(`mtime_nsec must be an integer in [0, ${NSEC_MAX}], got ${addr.mtime_nsec}`);
  }
  return `${fileUrlPrefix(base, addr)}/manifest.${addr.mtime_sec}.${addr.mtime_nsec}`;
}

/** URL of either kind of chunk. */
export function formatChunkUrl(base: string, addr: ChunkAddress): string {
  return addr.kind === 'block' ? formatBlockUrl(base, addr) : formatManifestUrl(base, addr);
}

// ---- cache keys ----

// DriverRequest.file_version is uint64 on the wire while every other file_version is int64, so a
// negative version comes back from a DriverRequest as 2^64 + v; asIntN maps both to one key.
function fileKey(volumeId: bigint, fileId: bigint, fileVersion: bigint): string {
  return `${BigInt.asUintN(64, volumeId)}:${formatFileId(BigInt.asUintN(64, fileId))}:${BigInt.asIntN(64, fileVersion)}`;
}

/**
 * A compact key naming one immutable chunk regardless of the fs_path it was requested under:
 * `"{volume}:{FILEID}:{file_version}:b:{block_id}.{block_version}"` or
 * `"{volume}:{FILEID}:{file_version}:m:{mtime_sec}.{mtime_nsec}"`.
 */
export function chunkCacheKey(addr: ChunkAddress): string {
  const file = fileKey(addr.volume_id, addr.file_id, addr.file_version);
  return addr.kind === 'block'
    ? `${file}:b:${addr.block_id}.${addr.block_version}`
    : `${file}:m:${addr.mtime_sec}.${addr.mtime_nsec}`;
}

// Mirrors DriverRequestType; the type-only import above keeps this module free of protobufjs.
const DriverChunk = { BLOCK: 1, MANIFEST: 2, RENAME_HINT: 3 } as const;

/**
 * The chunkCacheKey of the chunk a DriverRequest addresses: its block for BLOCK requests, its
 * manifest (manifest_mtime_sec/nsec) for MANIFEST and RENAME_HINT requests.
 * @throws RangeError when the request lacks the fields that name its chunk
 */
export function chunkCacheKeyOfDriverRequest(req: DriverRequest): string {
  const file = fileKey(req.volume_id, req.file_id, req.file_version);
  if (req.request_type === DriverChunk.BLOCK) {
    if (req.block_id == null || req.block_version == null) throw new RangeError('block DriverRequest lacks block_id or block_version');
    return `${file}:b:${BigInt.asUintN(64, req.block_id)}.${BigInt.asIntN(64, req.block_version)}`;
  }
  if (req.request_type === DriverChunk.MANIFEST || req.request_type === DriverChunk.RENAME_HINT) {
    if (req.manifest_mtime_sec == null || req.manifest_mtime_nsec == null) {
      throw new RangeError('manifest DriverRequest lacks manifest_mtime_sec or manifest_mtime_nsec');
    }
    return `${file}:m:${BigInt.asIntN(64, req.manifest_mtime_sec)}.${req.manifest_mtime_nsec}`;
  }
  throw new RangeError(`DriverRequest request_type ${req.request_type} names no chunk`);
}
