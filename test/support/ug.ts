// A volume with a user gateway for tests and benchmarks: replica gateways (built-in disk driver)
// and a UG that lists them with their URLs, each a real `sgw start`, plus a small client of the
// UG's application API.
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../../queues/redis.js';
import { sealSecrets } from '../../drivers/secrets.js';
import {
  cleanup, makeGatewayFolder, startGatewayProcess, waitForEmbeddedGateway, waitForGateway, UG_TEST_TOKEN,
  type FolderOptions, type GatewayFolder, type RunningGateway,
} from './gateway.js';

export interface UgVolumeOptions {
  /** Replica gateways (default 2). */
  rgs?: number;
  /** Extra gateways the UG lists (e.g. an AG started by the test). */
  extraPeers?: GatewayFolder[];
  /** The UG's driver source and config; secrets are sealed for the UG's key. */
  ugDriverSource?: string;
  ugDriverConfig?: Record<string, unknown>;
  ugSecrets?: Record<string, unknown>;
  /** The UG has no driver at all: no folder, nothing published for it. */
  ugNoDriver?: boolean;
  /** UG roles to wait for (driver:<mode> of the methods its driver has). */
  ugRoles?: string[];
  /** Extra top-level config keys of the UG and of the RGs. */
  ugConfig?: Record<string, unknown>;
  rgConfig?: Record<string, unknown>;
  /** Folder options of the i-th RG over the defaults (e.g. another driver: driverSource, driverConfig, driverSecrets). */
  rgFolder?: (i: number) => FolderOptions;
  /** The volume (default: a random one, so volumes of one test file never share a namespace). */
  volumeId?: bigint;
  /** The volume's block size (default 64 KiB). */
  blockSize?: number;
  /** The UG's id (default: random); an AG listing the UG must name it. */
  ugId?: bigint;
  /** The UG runs its own private redis-server (no `redis` in its config); the RGs use the test Redis. */
  ugEmbeddedRedis?: boolean;
  /** Each gateway in a process group of its own (see killGroup). */
  detached?: boolean;
  /** A Redis other than the test file's for every gateway (the `redis` client must be one of it). */
  redisUrl?: string;
}

export interface RunningVolume {
  ug: GatewayFolder;
  rgs: GatewayFolder[];
  ugProc: RunningGateway;
  rgProcs: RunningGateway[];
  client: UgClient;
  output(): string;
  /** Stops the UG and starts it again; with dropCache its chunk cache starts empty. */
  restartUg(opts?: { dropCache?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

// Generous: the test machine is shared, and actors that start slowly must not be taken for stuck.
const LIMITS = { call_timeout_ms: 15_000, request_timeout_ms: 60_000, max_upload_bytes: 16 << 20 };

export async function startUgVolume(redis: RedisClient, opts: UgVolumeOptions = {}): Promise<RunningVolume> {
  const volumeId = opts.volumeId ?? BigInt(randomBytes(3).readUIntBE(0, 3)) + 10_000n;
  const blockSize = opts.blockSize ?? 65536;
  // Each volume's UG gets an id of its own: its driver queues and version live under it in Redis.
  const ugId = opts.ugId ?? BigInt(randomBytes(3).readUIntBE(0, 3)) + 100n;
  const rgs: GatewayFolder[] = [];
  const redisUrl = opts.redisUrl ? { redisUrl: opts.redisUrl } : {};
  for (let i = 0; i < (opts.rgs ?? 2); i++) {
    rgs.push(await makeGatewayFolder({ volumeId, blockSize, ugId, config: { limits: LIMITS, ...opts.rgConfig }, ...redisUrl, ...opts.rgFolder?.(i) }));
  }
  const ug = await makeGatewayFolder({
    type: 'UG', volumeId, blockSize, ugId, peers: [...rgs, ...(opts.extraPeers ?? [])],
    ...(opts.ugDriverSource ? { driverSource: opts.ugDriverSource } : {}),
    driverConfig: opts.ugDriverConfig ?? {},
    noDriverFolder: opts.ugNoDriver ?? false,
    config: { limits: LIMITS, ...opts.ugConfig },
    embeddedRedis: opts.ugEmbeddedRedis ?? false,
    ...redisUrl,
  });
  if (opts.ugSecrets) writeFileSync(join(ug.dir, 'driver', 'secrets.sealed.json'), sealSecrets(Buffer.from(JSON.stringify(opts.ugSecrets)), ug.ugKey));
  const all: RunningGateway[] = [];
  const output = () => all.map((p) => p.output()).join('\n');
  const stop = async () => {
    await Promise.all(all.map((p) => p.stop()));
    cleanup([ug.dir, ...rgs.map((f) => f.dir)]);
  };
  const rgProcs: RunningGateway[] = [];
  let ugProc: RunningGateway | undefined;
  try {
    // One gateway at a time: starting a dozen processes at once starves a small machine.
    for (const f of rgs) {
      rgProcs.push(startGatewayProcess(f.configFile, undefined, undefined, { detached: opts.detached ?? false }));
      all.push(rgProcs[rgProcs.length - 1]!);
      await waitForGateway(f, redis);
    }
    ugProc = startGatewayProcess(ug.configFile, undefined, undefined, { detached: opts.detached ?? false });
    all.push(ugProc);
    if (opts.ugEmbeddedRedis) await waitForEmbeddedGateway(ug, opts.ugRoles ?? []);
    else await waitForGateway(ug, redis, opts.ugRoles ?? []);
  } catch (err) {
    const out = output();
    await stop();
    throw new Error(`${(err as Error).message}\n--- gateway output ---\n${out}`);
  }
  const volume: RunningVolume = {
    ug, rgs, ugProc: ugProc!, rgProcs, client: new UgClient(ug.url), output, stop,
    async restartUg({ dropCache = false } = {}) {
      await volume.ugProc.stop();
      all.splice(all.indexOf(volume.ugProc), 1);
      if (dropCache) rmSync(join(ug.dir, 'cache'), { recursive: true, force: true });
      volume.ugProc = startGatewayProcess(ug.configFile);
      all.push(volume.ugProc);
      await waitForGateway(ug, redis, opts.ugRoles ?? []);
    },
  };
  return volume;
}

export interface Answer {
  status: number;
  body: Buffer;
  headers: Headers;
  json<T = Record<string, unknown>>(): T;
}

/** The UG's application API over HTTP, with the test token. */
export class UgClient {
  constructor(readonly url: string, readonly token = UG_TEST_TOKEN) {}

  async request(method: string, path: string, init: { body?: Uint8Array | FormData; headers?: Record<string, string>; query?: string } = {}): Promise<Answer> {
    const res = await fetch(`${this.url}/FILES${path}${init.query ? `?${init.query}` : ''}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...init.headers },
      ...(init.body ? { body: init.body as BodyInit } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, body, headers: res.headers, json: <T>() => JSON.parse(body.toString()) as T };
  }

  put(path: string, data: Uint8Array): Promise<Answer> {
    return this.request('PUT', path, { body: data });
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.request('GET', path, { headers });
  }

  stat(path: string): Promise<Answer> {
    return this.request('GET', path, { query: 'stat' });
  }

  list(path: string): Promise<Answer> {
    return this.request('GET', path, { query: 'list' });
  }

  rm(path: string): Promise<Answer> {
    return this.request('DELETE', path);
  }

  mv(path: string, to: string): Promise<Answer> {
    return this.request('POST', path, { query: `mv=${encodeURIComponent(to)}` });
  }
}

/** Deterministic, non-repeating-looking bytes (so a misplaced block cannot match by chance). */
export function patternBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
