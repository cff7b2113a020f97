// The gateway's configuration file: one JSON document, parsed and checked once at start.
// Relative paths are relative to the file; SGW_* environment variables override chosen keys.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { parsePrivateKey, parsePublicKey } from '../signature.js';
import type { AdminCredential } from '../../http/admin-auth.js';
import { DRIVER_MODES, GATEWAY_TYPES, gatewayKey, type DriverMode, type GatewayType } from '../../queues/names.js';

export interface PeerGateway {
  id: bigint;
  type: GatewayType;
  user_id: bigint;
  caps: number;
  public_key: KeyObject;
  url: string | null;
}

export interface GatewayConfig {
  /** Folder the config file lives in; relative paths were resolved against it. */
  baseDir: string;
  file: string | null;
  gateway: {
    type: GatewayType;
    id: bigint;
    user_id: bigint;
    volume_id: bigint;
    block_size: number;
    host: string;
    port: number;
    private_key: KeyObject;
    public_key: KeyObject;
    /** "rg.20": prefix of this gateway's queue names. */
    key: string;
  };
  /** archive: a read-only volume whose data an acquisition gateway publishes. */
  volume: { version: bigint; cert_version: bigint; archive: boolean; gateways: Map<bigint, PeerGateway> };
  /** Redis URL, or null: start a private redis-server. */
  redis: string | null;
  /** Driver bundle folder on this host, or null: run whatever version is published in Redis. */
  driver: string | null;
  cache: { dir: string; max_bytes: number; memory_bytes: number };
  limits: {
    max_upload_bytes: number;
    replay_window_s: number;
    /** Deadline for one driver call, measured by the asker. */
    call_timeout_ms: number;
    /** Every HTTP request is answered within this, whatever happens behind it. */
    request_timeout_ms: number;
  };
  actors: {
    /** Driver actor processes per mode on a host (default 1), by mode. */
    count: Record<DriverMode, number>;
    /** Driver calls one actor runs at once. */
    concurrency: number;
    /** Chassis processes a driver actor runs for a Python driver (each serves one call at a time). */
    python_processes: number;
    /** State of this host's actors: temporary bundle files etc. */
    work_dir: string;
    /** fork: `sgw start` runs and restarts this host's actors; none: a service manager runs each `sgw actor`. */
    activation: Activation;
    /** V8 heap growing factor of actor processes, as 1 + percent/100 (0: V8's default); see heap.ts. */
    heap_growth_percent: number;
  };
  log: { level: string };
  /** /metrics and the per-request counters behind it (off: for measuring their cost). */
  metrics: { enabled: boolean };
  /** Operator surfaces (dashboard, metrics): off / open until a credential is set. */
  admin: AdminCredential;
  /** User gateways only: the application API's token and how reads and writes fan out. */
  ug: UgSettings;
}

export interface UgSettings {
  /** Bearer token of the application API (required for a UG; SGW_UG_TOKEN overrides). */
  token: string | null;
  /** Blocks fetched (read) or serialized (write) at once for one file. */
  parallel_blocks: number;
  /** Most bytes of chunks in one PUTCHUNKS POST (keep under the replicas' max_upload_bytes). */
  batch_bytes: number;
}

export const ACTIVATIONS = ['fork', 'none'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${what} must be an object`);
  return v as Json;
}

/** 64-bit ids may be given as decimal strings (JSON numbers above 2^53 lose digits). */
export function id64(v: unknown, what: string, signed = false): bigint {
  let n: bigint;
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) n = BigInt(v.trim());
  else if (typeof v === 'number') throw new ConfigError(`${what} = ${v} is beyond 2^53: write it as a string`);
  else throw new ConfigError(`${what} must be an integer (a decimal string for large values)`);
  const ok = signed ? n >= -(2n ** 63n) && n < 2n ** 63n : n >= 0n && n < 2n ** 64n;
  if (!ok) throw new ConfigError(`${what} = ${n} is out of range for a ${signed ? 'signed' : 'unsigned'} 64-bit integer`);
  return n;
}

function int(v: unknown, what: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) throw new ConfigError(`${what} must be an integer ≥ ${min}`);
  return n;
}

function str(v: unknown, what: string, dflt?: string): string {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${what} must be a non-empty string`);
  return v;
}

function gatewayType(v: unknown, what: string): GatewayType {
  const t = typeof v === 'string' ? v.toUpperCase() : v;
  if (!GATEWAY_TYPES.includes(t as GatewayType)) throw new ConfigError(`${what} must be one of ${GATEWAY_TYPES.join(', ')}`);
  return t as GatewayType;
}

function readKey<T>(path: string, what: string, parse: (pem: Buffer) => T): T {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${what}: cannot read ${path} (${(err as Error).message})`);
  }
  try {
    return parse(pem);
  } catch (err) {
    throw new ConfigError(`${what}: ${path} is not a PEM RSA key (${(err as Error).message})`);
  }
}

function bool(v: unknown, what: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(`${what} must be true or false`);
  return v;
}

function optStr(v: unknown, what: string): string | null {
  return v === undefined || v === null ? null : str(v, what);
}

function activation(v: unknown): Activation {
  if (v === undefined) return 'fork';
  if (!ACTIVATIONS.includes(v as Activation)) throw new ConfigError(`actors.activation must be one of ${ACTIVATIONS.map((x) => `"${x}"`).join(', ')}`);
  return v as Activation;
}

/** SGW_ADMIN_TOKEN / SGW_ADMIN_PASSWORD keep the credential out of a config file under version control. */
function adminCredential(a: Json, env: NodeJS.ProcessEnv): AdminCredential {
  const token = optStr(env.SGW_ADMIN_TOKEN ?? a.token, 'admin.token');
  const user = optStr(env.SGW_ADMIN_USER ?? a.user, 'admin.user');
  const password = optStr(env.SGW_ADMIN_PASSWORD ?? a.password, 'admin.password');
  if ((user === null) !== (password === null)) throw new ConfigError('admin.user and admin.password go together');
  if (user?.includes(':')) throw new ConfigError('admin.user must not contain ":" (HTTP basic auth)');
  return { token, user, password, allow_writes: bool(a.allow_writes, 'admin.allow_writes', false) };
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, dirname(resolve(file)), env, resolve(file));
}

export function parseConfig(raw: unknown, baseDir: string, env: NodeJS.ProcessEnv = {}, file: string | null = null): GatewayConfig {
  const root = obj(raw, 'config');
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const g = obj(root.gateway, 'gateway');
  const type = gatewayType(g.type, 'gateway.type');
  const id = id64(g.id, 'gateway.id');
  const private_key = readKey(path(str(g.private_key, 'gateway.private_key')), 'gateway.private_key', parsePrivateKey);
  const block_size = int(g.block_size, 'gateway.block_size', 65536, 1);
  const gateway = {
    type, id, private_key, block_size,
    user_id: id64(g.user_id, 'gateway.user_id'),
    volume_id: id64(g.volume_id, 'gateway.volume_id'),
    host: str(env.SGW_HOST ?? g.host, 'gateway.host', '127.0.0.1'),
    port: int(env.SGW_PORT ?? g.port, 'gateway.port', 8080),
    public_key: parsePublicKey(private_key.export({ type: 'pkcs1', format: 'pem' })),
    key: gatewayKey(type, id),
  };

  const v = obj(root.volume, 'volume');
  const peers = new Map<bigint, PeerGateway>();
  const list = v.gateways ?? [];
  if (!Array.isArray(list)) throw new ConfigError('volume.gateways must be an array');
  list.forEach((p: unknown, i: number) => {
    const peer = obj(p, `volume.gateways[${i}]`);
    const pid = id64(peer.id, `volume.gateways[${i}].id`);
    if (peers.has(pid)) throw new ConfigError(`volume.gateways lists gateway ${pid} twice`);
    peers.set(pid, {
      id: pid,
      type: gatewayType(peer.type, `volume.gateways[${i}].type`),
      user_id: id64(peer.user_id, `volume.gateways[${i}].user_id`),
      caps: int(peer.caps, `volume.gateways[${i}].caps`, 0),
      public_key: readKey(path(str(peer.public_key, `volume.gateways[${i}].public_key`)), `volume.gateways[${i}].public_key`, parsePublicKey),
      url: peer.url === undefined ? null : str(peer.url, `volume.gateways[${i}].url`),
    });
  });

  if (type === 'AG') {
    // Seed 003: at most one AG per volume, and only on an archive volume.
    if (v.archive !== true) throw new ConfigError('an acquisition gateway serves only an archive volume: set volume.archive to true');
    const other = [...peers.values()].find((p) => p.type === 'AG' && p.id !== id);
    if (other) throw new ConfigError(`volume.gateways lists acquisition gateway ${other.id}, but a volume may have at most one (this gateway, ${id}, is one)`);
  }

  const c = obj(root.cache, 'cache');
  const l = obj(root.limits, 'limits');
  const a = obj(root.actors, 'actors');
  const counts = obj(a.count, 'actors.count');
  const count = {} as Record<DriverMode, number>;
  for (const mode of DRIVER_MODES) count[mode] = int(counts[mode] ?? a.default_count, `actors.count.${mode}`, 1, 1);
  for (const k of Object.keys(counts)) {
    if (!DRIVER_MODES.includes(k as DriverMode)) throw new ConfigError(`actors.count.${k}: unknown driver mode (one of ${DRIVER_MODES.join(', ')})`);
  }
  const concurrency = int(a.concurrency, 'actors.concurrency', 16, 1);
  const request_timeout_ms = int(l.request_timeout_ms, 'limits.request_timeout_ms', 30_000, 100);
  const redisUrl = env.SGW_REDIS_URL ?? root.redis;
  const driver = env.SGW_DRIVER ?? root.driver;
  const u = obj(root.ug, 'ug');
  const ug: UgSettings = {
    token: optStr(env.SGW_UG_TOKEN ?? u.token, 'ug.token'),
    parallel_blocks: int(u.parallel_blocks, 'ug.parallel_blocks', 8, 1),
    batch_bytes: int(u.batch_bytes, 'ug.batch_bytes', 4 << 20, 1),
  };
  if (type === 'UG' && ug.token === null) throw new ConfigError('a user gateway needs an application token: set ug.token or SGW_UG_TOKEN');
  return {
    baseDir, file, gateway,
    volume: {
      version: id64(v.version ?? 1, 'volume.version'),
      cert_version: id64(v.cert_version ?? 1, 'volume.cert_version'),
      archive: bool(v.archive, 'volume.archive', false),
      gateways: peers,
    },
    redis: redisUrl === undefined || redisUrl === null || redisUrl === '' ? null : str(redisUrl, 'redis'),
    driver: driver === undefined || driver === null ? null : path(str(driver, 'driver')),
    cache: {
      dir: path(str(env.SGW_CACHE_DIR ?? c.dir, 'cache.dir', 'cache')),
      max_bytes: int(c.max_bytes, 'cache.max_bytes', 1 << 30),
      memory_bytes: int(c.memory_bytes, 'cache.memory_bytes', 64 << 20),
    },
    limits: {
      max_upload_bytes: int(l.max_upload_bytes, 'limits.max_upload_bytes', 256 << 20, 1),
      replay_window_s: int(l.replay_window_s, 'limits.replay_window_s', 86_400, 1),
      call_timeout_ms: Math.min(int(l.call_timeout_ms, 'limits.call_timeout_ms', 10_000, 50), request_timeout_ms),
      request_timeout_ms,
    },
    actors: {
      count,
      concurrency,
      python_processes: int(a.python_processes, 'actors.python_processes', Math.min(concurrency, 2), 1),
      work_dir: path(str(env.SGW_WORK_DIR ?? a.work_dir, 'actors.work_dir', '.sgw-work')),
      activation: activation(a.activation),
      heap_growth_percent: int(a.heap_growth_percent, 'actors.heap_growth_percent', 300, 0),
    },
    log: { level: str(env.SGW_LOG_LEVEL ?? obj(root.log, 'log').level, 'log.level', 'info') },
    admin: adminCredential(obj(root.admin, 'admin'), env),
    ug,
    metrics: { enabled: bool(obj(root.metrics, 'metrics').enabled, 'metrics.enabled', true) },
  };
}
