// The gateway's configuration file: one JSON document, parsed and checked once at start against
// its schema (schema.ts). Relative paths are relative to the file; SGW_* environment variables
// override chosen keys.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { z } from 'zod';
import { parsePrivateKey, parsePublicKey } from '../signature.js';
import type { AdminCredential } from '../../http/admin-auth.js';
import { DRIVER_MODES, gatewayKey, type DriverMode, type GatewayType } from '../../queues/names.js';
import type { HostPort, RedisTarget, RedisTls } from '../../queues/redis.js';
import { ALL_REPLICAS, type ReplicationPolicy } from '../../queues/replicas.js';
import { configSchema, envOverrides, type ConfigFile } from './schema.js';

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
  /** The shared Redis, or null: `sgw start` runs a private redis-server. */
  redis: RedisTarget | null;
  /** Acknowledged means replicated: how many replicas, and how long to wait for them. */
  replication: ReplicationPolicy;
  /** Driver bundle folder on this host, or null: run whatever version is published in Redis. */
  driver: string | null;
  cache: { dir: string; max_bytes: number; memory_bytes: number };
  /** This gateway's own state on this host: the private Redis's folder and the start lock. */
  state: { dir: string; appendfsync: AppendFsync };
  limits: {
    max_upload_bytes: number;
    replay_window_s: number;
    /** Deadline for one driver call, measured by the asker. */
    call_timeout_ms: number;
    /** Every HTTP request is answered within this, whatever happens behind it. */
    request_timeout_ms: number;
    /** Chunks one POST may name (413 beyond). */
    max_blocks_per_request: number;
    /** POST body bytes one http actor holds at once (503 + Retry-After beyond). */
    post_bytes_in_flight: number;
    /** A connection's request headers must arrive within this. */
    header_timeout_ms: number;
    /** A POST body that stalls this long gets 408. */
    body_idle_timeout_ms: number;
    /** An idle kept-alive connection is closed after this. */
    keep_alive_timeout_ms: number;
  };
  /** Who may reach the http actor: Host names it answers to, and who may read /NAMESPACE. */
  http: HttpAccess;
  actors: {
    /** Driver actor processes per mode on a host (default 1), by mode. */
    count: Record<DriverMode, number>;
    /** per_mode: a driver actor process per mode; shared: one process serves every mode of the host (driver-processes.ts). */
    driver_processes: 'per_mode' | 'shared';
    /** Driver calls one actor runs at once (per mode). */
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
  /** PUTCHUNKS POSTs of one write on their way at once (to every replica each). */
  posts_in_flight: number;
}

export interface HttpAccess {
  /** Host header names accepted besides the loopback ones and gateway.host (see hostCheck). */
  allowed_hosts: string[];
  /** Who may read /NAMESPACE on an RG or AG (a UG always wants its token). */
  namespace_access: 'open' | 'admin';
}

export type Activation = ConfigFile['actors']['activation'];
export type AppendFsync = ConfigFile['state']['appendfsync'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** One line per problem, each naming the key: "limits.call_timeout_ms: must be an integer ≥ 50". */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => {
    const where = i.path.map(String).join('.') || 'config';
    switch (i.code) {
      case 'unrecognized_keys':
        return `${where}: unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
      case 'too_small':
        return `${where}: must be ${i.origin === 'number' ? `an integer ≥ ${String(i.minimum)}` : 'a non-empty string'}`;
      case 'invalid_value':
        return `${where}: must be one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
      case 'invalid_type':
        return `${where}: must be ${i.expected === 'number' || i.expected === 'int' ? 'an integer' : i.expected === 'boolean' ? 'true or false' : `a ${i.expected}`}`;
      case 'invalid_union':
        return `${where}: must be an integer (a decimal string for large values)`;
      default:
        return `${where}: ${i.message}`;
    }
  }).join('\n');
}

function readFileOf(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${what}: cannot read ${path} (${(err as Error).message})`);
  }
}

function hostPortOf(s: string): HostPort {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

/** The `redis` key as a connection target, its TLS files read (paths relative to the config). */
function redisTargetOf(r: ConfigFile['redis'], path: (p: string) => string): RedisTarget | null {
  if (r === null) return null;
  const file = (p: string | null, key: string) => (p === null ? null : readFileOf(path(p), `redis.tls.${key}`));
  const tls: RedisTls | null = r.tls ? { ca: file(r.tls.ca, 'ca'), cert: file(r.tls.cert, 'cert'), key: file(r.tls.key, 'key') } : null;
  if (r.url !== null) return { kind: 'single', url: r.url, tls };
  if (r.sentinels) {
    return { kind: 'sentinel', sentinels: r.sentinels.map(hostPortOf), name: r.name!, user: r.user, password: r.password, sentinelPassword: r.sentinel_password, tls };
  }
  return { kind: 'cluster', nodes: r.cluster!.map(hostPortOf), user: r.user, password: r.password, tls };
}

function readKey<T>(path: string, what: string, parse: (pem: Buffer) => T): T {
  const pem = readFileOf(path, what);
  try {
    return parse(pem);
  } catch (err) {
    throw new ConfigError(`${what}: ${path} is not a PEM RSA key (${(err as Error).message})`);
  }
}

/** The file's JSON with the SGW_* variables that are set written into their keys. */
function withEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const root = structuredClone(raw) as Record<string, unknown>;
  for (const { env: name, path } of envOverrides()) {
    const value = env[name];
    if (value === undefined) continue;
    let node = root;
    for (const k of path.slice(0, -1)) {
      const next = node[k];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return root;
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
  const parsed = configSchema.safeParse(withEnvOverrides(raw, env));
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error.issues));
  const c = parsed.data;
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const g = c.gateway;
  const private_key = readKey(path(g.private_key), 'gateway.private_key', parsePrivateKey);
  const gateway = {
    ...g, private_key,
    public_key: parsePublicKey(private_key.export({ type: 'pkcs1', format: 'pem' })),
    key: gatewayKey(g.type, g.id),
  };

  const peers = new Map<bigint, PeerGateway>();
  c.volume.gateways.forEach((p, i) => {
    if (peers.has(p.id)) throw new ConfigError(`volume.gateways lists gateway ${p.id} twice`);
    peers.set(p.id, { ...p, public_key: readKey(path(p.public_key), `volume.gateways[${i}].public_key`, parsePublicKey) });
  });

  if (g.type === 'AG') {
    // Seed 003: at most one AG per volume, and only on an archive volume.
    if (!c.volume.archive) throw new ConfigError('an acquisition gateway serves only an archive volume: set volume.archive to true');
    const other = [...peers.values()].find((p) => p.type === 'AG' && p.id !== g.id);
    if (other) throw new ConfigError(`volume.gateways lists acquisition gateway ${other.id}, but a volume may have at most one (this gateway, ${g.id}, is one)`);
  }
  const a = c.admin;
  if ((a.user === null) !== (a.password === null)) throw new ConfigError('admin.user and admin.password go together');
  if (a.user?.includes(':')) throw new ConfigError('admin.user must not contain ":" (HTTP basic auth)');
  if (g.type === 'UG' && c.ug.token === null) throw new ConfigError('a user gateway needs an application token: set ug.token or SGW_UG_TOKEN');

  const count = {} as Record<DriverMode, number>;
  for (const mode of DRIVER_MODES) count[mode] = c.actors.count[mode] ?? 1;
  return {
    baseDir, file, gateway,
    volume: { ...c.volume, gateways: peers },
    redis: redisTargetOf(c.redis, path),
    replication: { acks: c.replication.acks === 'all' ? ALL_REPLICAS : c.replication.acks, timeoutMs: c.replication.timeout_ms },
    driver: c.driver === null ? null : path(c.driver),
    cache: { ...c.cache, dir: path(c.cache.dir) },
    state: { ...c.state, dir: path(c.state.dir) },
    limits: { ...c.limits, call_timeout_ms: Math.min(c.limits.call_timeout_ms, c.limits.request_timeout_ms) },
    actors: {
      ...c.actors,
      count,
      python_processes: c.actors.python_processes ?? Math.min(c.actors.concurrency, 2),
      work_dir: path(c.actors.work_dir),
    },
    log: c.log,
    // An AG's namespace is the published archive, whose blocks anyone may GET; an RG's names the
    // files (ids and versions) of a volume that may be private: only the operator reads it.
    http: { ...c.http, namespace_access: c.http.namespace_access ?? (g.type === 'AG' ? 'open' : 'admin') },
    admin: a,
    ug: c.ug,
    metrics: c.metrics,
  };
}
