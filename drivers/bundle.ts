// Driver bundles: a driver folder compiled into ONE self-contained CommonJS file plus its config
// and sealed secrets, addressed by the SHA-256 of that content. Bundles travel through Redis, so
// driver actors on hosts with no shared file system all run byte-identical code.
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { RedisClient } from '../queues/redis.js';
import { keys } from '../queues/names.js';
import { runScript } from '../queues/scripts.js';
import { packageRoot, useEmbeddedEsbuild } from './packaged-files.js';
import { driverImportsPlugin, NODE_BUILTINS } from './driver-packages.js';
import { parseSealedSecrets } from './secrets.js';
import { nextSequence, signBundle, verifyBundle } from './bundle-signature.js';
import { listPythonMethods, PythonSourceError } from './python-runtime.js';

export interface BundleMeta {
  /** Names of the functions the driver module exports, sorted. */
  methods: string[];
  /** The entry file the bundle was built from (driver.ts, driver.js, driver.mjs, driver.cjs or driver.py). */
  entry: string;
  /** ISO time of the build; informative only, never part of the hash. */
  builtAt: string;
}

export interface DriverBundle {
  /** SHA-256 hex of (code, config, secrets): the driver version. */
  hash: string;
  /** The driver as one CommonJS file, or a driver.py's source as it is. */
  code: string;
  /** config.json as canonical JSON (sorted keys, no whitespace). */
  config: Buffer;
  /** secrets.sealed.json as written by sealSecrets, or null. */
  secrets: Buffer | null;
  meta: BundleMeta;
  /** The signed manifest as read from Redis (bundle-signature.ts); absent on a bundle just built. */
  signed?: Buffer;
}

export type DriverMethod = (...args: unknown[]) => unknown;

export interface LoadedDriver {
  hash: string;
  methods: Map<string, DriverMethod>;
  module: unknown;
}

/** A driver folder that cannot be built, or a bundle in Redis that is damaged. */
export class BundleError extends Error {
  override name = 'BundleError';
}

/** The driver's top-level code threw while loading. */
export class DriverLoadError extends Error {
  override name = 'DriverLoadError';
}

export const ENTRY_NAMES = ['driver.ts', 'driver.js', 'driver.mjs', 'driver.cjs', 'driver.py'] as const;

/** A driver.py bundle runs in Python chassis processes, not in the actor's Node process. */
export function isPythonBundle(bundle: { meta: BundleMeta }): boolean {
  return bundle.meta.entry === 'driver.py';
}

const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** JSON with object keys sorted at every level and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const fields = Object.keys(obj).sort().filter((k) => obj[k] !== undefined);
    return `{${fields.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The bundle version: SHA-256 over a domain tag, then each part length-prefixed (64-bit
 * big-endian) and secrets behind a presence byte, so no two contents encode the same.
 */
export function bundleHash(code: string, config: Buffer, secrets: Buffer | null): string {
  const h = createHash('sha256').update('sgw-driver-bundle/1\0');
  const part = (bytes: Buffer) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(bytes.length));
    h.update(len).update(bytes);
  };
  part(Buffer.from(code, 'utf8'));
  part(config);
  h.update(Buffer.from([secrets ? 1 : 0]));
  if (secrets) part(secrets);
  return h.digest('hex');
}

function findEntry(folder: string): string {
  const present = ENTRY_NAMES.filter((name) => existsSync(join(folder, name)));
  if (present.length !== 1) {
    throw new BundleError(present.length === 0
      ? `${folder} has no driver file (one of ${ENTRY_NAMES.join(', ')})`
      : `${folder} has several driver files (${present.join(', ')}): keep exactly one`);
  }
  return present[0]!;
}

/** Top-level keys of config.json whose relative path is taken from the driver folder (STORAGE_DIR, DATASET_DIR, ...). */
const FOLDER_KEY = /_DIR$/;

/**
 * A relative path under a key ending in _DIR is made absolute against the driver folder, where the
 * person who wrote it looked from; the bundle (and so its version) holds the absolute path, since
 * driver actors run on hosts that may not have the folder.
 */
function resolveFolderKeys(config: Record<string, unknown>, folder: string): Record<string, unknown> {
  const out = { ...config };
  for (const [key, value] of Object.entries(config)) {
    if (FOLDER_KEY.test(key) && typeof value === 'string' && value !== '' && !isAbsolute(value)) out[key] = resolve(folder, value);
  }
  return out;
}

function readConfig(folder: string): Buffer {
  const path = join(folder, 'config.json');
  if (!existsSync(path)) return Buffer.from('{}');
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BundleError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new BundleError(`${path} must hold a JSON object`);
  return Buffer.from(canonicalJson(resolveFolderKeys(config as Record<string, unknown>, folder)));
}

function readSealedSecrets(folder: string): Buffer | null {
  const path = join(folder, 'secrets.sealed.json');
  if (!existsSync(path)) return null;
  const sealed = readFileSync(path);
  parseSealedSecrets(sealed); // fail at publish time, not on every driver host
  return sealed;
}

/**
 * esbuild names each bundled file in a comment (and, for wrapped modules, a string) by its path
 * relative to the driver folder. For sgw's own files that path depends on where the folder lies
 * relative to the sgw install, which must not change the hash: name them "sgw/<path>" instead.
 */
function stableSgwPaths(code: string, folder: string, inputs: string[]): string {
  const root = packageRoot();
  let out = code;
  for (const input of inputs) {
    if (!input.startsWith('../') && !isAbsolute(input)) continue;
    const inPackage = relative(root, resolve(folder, input));
    if (inPackage.startsWith('..') || isAbsolute(inPackage)) continue;
    const stable = `sgw/${inPackage.split(sep).join('/')}`;
    out = out.split(`// ${input}\n`).join(`// ${stable}\n`).split(JSON.stringify(input)).join(JSON.stringify(stable));
  }
  return out;
}

async function compileDriver(folder: string, entry: string): Promise<string> {
  useEmbeddedEsbuild();
  const { build } = await import('esbuild'); // loaded only by publishers, not by driver actors
  bundlerStarted = true;
  try {
    const result = await build({
      absWorkingDir: folder,
      entryPoints: [join(folder, entry)],
      bundle: true, platform: 'node', format: 'cjs', target: 'node20',
      // 'sgw' and the packages sgw provides come from sgw's files, so bundles need no sgw at run time.
      external: NODE_BUILTINS, plugins: [driverImportsPlugin()],
      write: false, metafile: true, logLevel: 'silent', charset: 'utf8',
    });
    const code = result.outputFiles[0]!.text;
    return stableSgwPaths(code, folder, Object.keys(result.metafile.inputs));
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number; column: number } | null }[] }).errors;
    if (!errors?.length) throw err;
    const lines = errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text));
    throw new BundleError(`cannot bundle the driver in ${folder}:\n${lines.join('\n')}`);
  }
}

/**
 * Ends esbuild's service process, which otherwise stays for later builds (~13 MB beside a
 * long-running supervisor); the next build starts it again.
 */
export async function stopBundler(): Promise<void> {
  if (!bundlerStarted) return;
  bundlerStarted = false;
  const { stop } = await import('esbuild');
  await stop();
}

let bundlerStarted = false;

/** Builds the bundle of a driver folder (driver file, optional config.json and secrets.sealed.json). */
export async function buildBundle(folder: string): Promise<DriverBundle> {
  const dir = resolve(folder);
  const entry = findEntry(dir);
  const config = readConfig(dir);
  const secrets = readSealedSecrets(dir);
  if (entry === 'driver.py') return buildPythonBundle(dir, config, secrets);
  const code = await compileDriver(dir, entry);
  const hash = bundleHash(code, config, secrets);
  const bundle: DriverBundle = { hash, code, config, secrets, meta: { methods: [], entry, builtAt: new Date().toISOString() } };
  // Load it once, the way driver actors will, to learn its methods and surface top-level errors now.
  const workDir = await mkdtemp(join(tmpdir(), 'sgw-bundle-'));
  try {
    bundle.meta.methods = [...loadDriverModule(bundle, workDir, { keepInCache: false }).methods.keys()];
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  return bundle;
}

/** A driver.py is stored as it is; its methods are found by parsing it, never by running it. */
async function buildPythonBundle(dir: string, config: Buffer, secrets: Buffer | null): Promise<DriverBundle> {
  const path = join(dir, 'driver.py');
  let code: string;
  try {
    code = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path));
  } catch {
    throw new BundleError(`${path} is not UTF-8 text`);
  }
  let methods: string[];
  try {
    methods = await listPythonMethods(code);
  } catch (err) {
    if (!(err instanceof PythonSourceError)) throw err;
    throw new BundleError(`cannot publish ${path}: ${err.message}`);
  }
  const hash = bundleHash(code, config, secrets);
  return { hash, code, config, secrets, meta: { methods, entry: 'driver.py', builtAt: new Date().toISOString() } };
}

/**
 * Publishes a bundle as the gateway's current driver (stored, signed, pointed at and announced in
 * one step: queues/lua/publish-bundle.lua); `changed` is false when it already was. The manifest
 * is signed with the gateway's private key and a sequence above the current version's.
 */
export async function publishBundle(
  redis: RedisClient, gateway: string, bundle: DriverBundle, privateKey: KeyObject,
): Promise<{ hash: string; changed: boolean; seq: number }> {
  if (bundleHash(bundle.code, bundle.config, bundle.secrets) !== bundle.hash) throw new BundleError(`bundle ${bundle.hash} does not match its content`);
  const seq = nextSequence(await currentSequence(redis, gateway, privateKey));
  const signed = signBundle(gateway, bundle.hash, bundle.meta, seq, privateKey);
  const changed = await runScript(redis, 'publishBundle', [keys.bundle(gateway, bundle.hash), keys.driverCurrent(gateway), keys.driverChanged(gateway)], [
    bundle.hash, Buffer.from(bundle.code, 'utf8'), bundle.config, JSON.stringify(bundle.meta), bundle.secrets ? '1' : '0', bundle.secrets ?? '', signed,
  ]);
  return { hash: bundle.hash, changed: changed === 1, seq };
}

/** The publish sequence of the current version, when it carries a valid signature (else null). */
async function currentSequence(redis: RedisClient, gateway: string, key: KeyObject): Promise<number | null> {
  const hash = await currentBundleHash(redis, gateway);
  if (!hash || !HASH_PATTERN.test(hash)) return null;
  try {
    return verifyBundle(await redis.hgetBuffer(keys.bundle(gateway, hash), 'signed'), gateway, hash, key).seq;
  } catch {
    return null;
  }
}

/** Reads a bundle published for the gateway; null when there is none with that hash. Checks the content against the hash. */
export async function fetchBundle(redis: RedisClient, gateway: string, hash: string): Promise<DriverBundle | null> {
  if (!HASH_PATTERN.test(hash)) throw new BundleError(`${JSON.stringify(hash)} is not a bundle hash`);
  const fields = await redis.hgetallBuffer(keys.bundle(gateway, hash));
  if (!fields.code || !fields.config || !fields.meta) return null;
  const code = fields.code.toString('utf8');
  const secrets = fields.secrets ?? null;
  if (bundleHash(code, fields.config, secrets) !== hash) throw new BundleError(`bundle ${hash} in Redis does not match its hash`);
  let meta: BundleMeta;
  try {
    meta = JSON.parse(fields.meta.toString('utf8')) as BundleMeta;
  } catch {
    throw new BundleError(`bundle ${hash} in Redis has unreadable meta`);
  }
  return { hash, code, config: fields.config, secrets, meta, ...(fields.signed ? { signed: fields.signed } : {}) };
}

/** The hash of the bundle the gateway runs now, or null before any publish. */
export async function currentBundleHash(redis: RedisClient, gateway: string): Promise<string | null> {
  return redis.get(keys.driverCurrent(gateway));
}

function exportedFunctions(mod: unknown): Map<string, DriverMethod> {
  const collect = (obj: unknown) => {
    const found = new Map<string, DriverMethod>();
    if ((typeof obj === 'object' || typeof obj === 'function') && obj !== null) {
      for (const [name, value] of Object.entries(obj)) if (typeof value === 'function') found.set(name, value as DriverMethod);
    }
    return new Map([...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  };
  const named = collect(mod);
  // A driver written as `export default { read_chunk, ... }` keeps its methods on `default`.
  return named.size > 0 ? named : collect((mod as { default?: unknown } | null)?.default);
}

/** Writes the bundle's code to workDir/bundles/<hash>.cjs and loads it. */
export function loadDriverModule(bundle: DriverBundle, workDir: string, options: { keepInCache?: boolean } = {}): LoadedDriver {
  if (!HASH_PATTERN.test(bundle.hash)) throw new BundleError(`${JSON.stringify(bundle.hash)} is not a bundle hash`);
  if (isPythonBundle(bundle)) throw new BundleError(`bundle ${bundle.hash.slice(0, 12)} is a Python driver: run it in a chassis`);
  const dir = join(resolve(workDir), 'bundles');
  const file = join(dir, `${bundle.hash}.cjs`);
  mkdirSync(dir, { recursive: true });
  // Temp + rename: several actors on one host may write the same bundle at once.
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(temp, bundle.code);
  renameSync(temp, file);
  const requireBundle = createRequire(file);
  let mod: unknown;
  try {
    mod = requireBundle(file);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new DriverLoadError(`driver ${bundle.hash.slice(0, 12)} (${bundle.meta.entry}) failed to load: ${message}`, { cause: err });
  } finally {
    if (options.keepInCache === false) delete requireBundle.cache[file];
  }
  return { hash: bundle.hash, methods: exportedFunctions(mod), module: mod };
}

/** Removes a bundle's file from workDir (after an actor switched to a newer version). */
export function removeLoadedBundle(workDir: string, hash: string): void {
  if (HASH_PATTERN.test(hash)) rmSync(join(resolve(workDir), 'bundles', `${hash}.cjs`), { force: true });
}
