// The cluster the multi-host scenarios run on, every part on a host of the bed: Redis with
// Sentinel on three hosts, an RG as two front hosts (http,cache) behind HAProxy and two worker
// hosts (driver), a UG host (the RG volume's UG and the AG volume's UG) and an AG host with its
// dataset. The disk driver's storage is one folder of the machine, as a remote back-end all
// worker hosts reach would be.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { keys } from '../../queues/names.js';
import {
  CLI, cleanup, DATASET_DRIVER_JS, DISK_DRIVER_JS, makeGatewayFolder, stopChild, waitFor, writeDriver, type GatewayFolder,
} from '../support/gateway.js';
import { useTestRedis } from '../support/redis.js';
import { patternBytes, UgClient } from '../support/ug.js';
import { Bed, type Host } from './bed.js';
import { startHostSentinels, type HostSentinels } from './redis-hosts.js';
import { startHaproxy, type Haproxy } from './haproxy.js';

/** Short enough that a lost call is answered soon; long enough for a loaded 2-core machine. */
export const LIMITS = { call_timeout_ms: 5000, request_timeout_ms: 10_000, max_upload_bytes: 16 << 20 };
/** Chunks above 64 KiB leave their job: they travel through Redis between hosts. */
export const BLOCK_SIZE = 128 * 1024;
export const RG_ROLES = ['driver:read', 'driver:write', 'driver:delete', 'driver:rename'];
export const HOSTS = ['redis1', 'redis2', 'redis3', 'lb', 'front1', 'front2', 'worker1', 'worker2', 'ug', 'ag'] as const;
export type HostName = (typeof HOSTS)[number];

/** One `sgw start` on a host. */
export interface HostProcess {
  name: string;
  host: Host;
  folder: GatewayFolder;
  roles: string | undefined;
  child: ChildProcess;
  output(): string;
}

export interface AgDataset {
  dir: string;
  files: Map<string, Buffer>;
}

export class Cluster {
  readonly procs = new Map<string, HostProcess>();
  lb!: Haproxy;
  rg!: GatewayFolder;
  ug!: GatewayFolder;
  ag!: GatewayFolder;
  agUg!: GatewayFolder;
  folders = new Map<string, GatewayFolder>();
  dataset!: AgDataset;
  admin!: Redis;

  private constructor(readonly bed: Bed, readonly redis: HostSentinels) {}

  host(name: HostName): Host {
    return this.bed.host(name);
  }

  /** The URL of the RG as its clients know it: the load balancer. */
  get rgUrl(): string {
    return this.lb.url;
  }

  get agUrl(): string {
    return `http://${this.host('ag').address}:${this.ag.port}`;
  }

  ugClient(): UgClient {
    return new UgClient(`http://${this.host('ug').address}:${this.ug.port}`);
  }

  agUgClient(): UgClient {
    return new UgClient(`http://${this.host('ug').address}:${this.agUg.port}`);
  }

  /** Everything each process wrote, for a failing test's log. */
  output(): string {
    return [...this.procs.values()].map((p) => p.output().split('\n').map((l) => `[${p.name}] ${l}`).join('\n')).join('\n');
  }

  static async start(): Promise<Cluster> {
    const bed = await Bed.create([...HOSTS]);
    const redis = await startHostSentinels(['redis1', 'redis2', 'redis3'].map((n) => bed.host(n)));
    // Every gateway folder made from here on names the Sentinel set.
    useTestRedis(async () => ({ config: redis.config, client: () => redis.client() }));
    const c = new Cluster(bed, redis);
    c.admin = redis.client();
    await c.makeFolders();
    await c.startAll();
    return c;
  }

  private async makeFolders(): Promise<void> {
    const volumeId = BigInt(20_000 + (process.pid % 10_000));
    const ugId = BigInt(500 + (process.pid % 1000));
    const config = { limits: LIMITS, actors: { concurrency: 8 } };
    const storage = join(this.bed.root, 'storage');
    mkdirSync(storage, { recursive: true });
    this.rg = await makeGatewayFolder({ volumeId, ugId, blockSize: BLOCK_SIZE, config, driverConfig: { STORAGE_DIR: storage } });
    writeDriver(this.rg.dir, `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`, { STORAGE_DIR: storage });
    this.folders.set('front1', this.rg);
    for (const name of ['front2', 'worker1', 'worker2']) {
      this.folders.set(name, await makeGatewayFolder({ sameGatewayAs: this.rg, ugId, noDriverFolder: true, config }));
    }
    // The UG knows the RG by the load balancer's address.
    const lbAddress = this.host('lb').address;
    this.ug = await makeGatewayFolder({ type: 'UG', volumeId, ugId, blockSize: BLOCK_SIZE, peers: [{ ...this.rg, url: `http://${lbAddress}:${this.rg.port}` }], driverConfig: {}, config });
    this.folders.set('ug', this.ug);

    const dir = join(this.bed.root, 'dataset');
    mkdirSync(join(dir, 'pub'), { recursive: true });
    const files = new Map<string, Buffer>([['/pub/big.bin', patternBytes(5 * 8192 + 3, 41)], ['/pub/small.txt', Buffer.from('published by the AG host\n')]]);
    for (const [p, b] of files) writeFileSync(join(dir, p), b);
    this.dataset = { dir, files };
    const agUgId = ugId + 1000n;
    this.ag = await makeGatewayFolder({
      type: 'AG', blockSize: 8192, ugId: agUgId, driverSource: `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n`,
      driverConfig: { DATASET_DIR: dir, RESCAN_MS: 500 }, config,
    });
    this.folders.set('ag', this.ag);
    this.agUg = await makeGatewayFolder({
      type: 'UG', volumeId: this.ag.volumeId, blockSize: 8192, ugId: agUgId, driverConfig: {}, config,
      peers: [{ ...this.ag, url: `http://${this.host('ag').address}:${this.ag.port}` }],
    });
    this.folders.set('agug', this.agUg);
  }

  private async startAll(): Promise<void> {
    // One host at a time: a dozen node processes starting at once starve a 2-core machine.
    this.lb = await startHaproxy(this.host('lb'), this.rg.port, [this.host('front1'), this.host('front2')], this.rg.port);
    this.startGateway('front1', 'front1', 'http,cache');
    await waitFor('front1 /PING', async () => (await fetch(`${this.urlOf('front1')}/PING`)).status === 200);
    for (const w of ['worker1', 'worker2'] as const) {
      this.startGateway(w, w, 'driver');
      await this.waitWorker(w);
    }
    this.startGateway('front2', 'front2', 'http,cache');
    for (const f of ['front1', 'front2'] as const) await this.waitReady(f, this.urlOf(f));
    await this.lb.waitUp(['front1', 'front2']);
    this.startGateway('ug', 'ug', undefined);
    await this.waitReady('the UG', this.ugClient().url);
    this.startGateway('ag', 'ag', undefined);
    await this.waitReady('the AG', this.agUrl);
    this.startGateway('agug', 'ug', undefined);
    await this.waitReady('the AG volume\'s UG', this.agUgClient().url);
  }

  /** Waits until a gateway's /ready says 200; on a timeout the error quotes its last answer. */
  async waitReady(what: string, url: string): Promise<void> {
    let last = '';
    await waitFor(`${what} /ready`, async () => {
      const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5000) });
      last = `${res.status} ${await res.text()}`;
      return res.status === 200;
    }).catch((err: Error) => { throw new Error(`${err.message}; last answer: ${last}`); });
  }

  /** The http URL of a front host itself (not through the load balancer). */
  urlOf(name: 'front1' | 'front2'): string {
    return `http://${this.host(name).address}:${this.rg.port}`;
  }

  /** `sgw start` of a folder on a host (what `name` keys: front1, worker2, ug, agug, ...). */
  startGateway(name: string, hostName: HostName, roles: string | undefined): HostProcess {
    const host = this.host(hostName);
    const folder = this.folders.get(name)!;
    const child = host.spawn(process.execPath, [CLI, 'start', '--config', folder.configFile, ...(roles ? ['--roles', roles] : [])], {
      cwd: folder.dir, env: { SGW_HOST: host.address, SGW_LOG_LEVEL: process.env.SGW_TEST_LOG_LEVEL ?? 'warn' },
    });
    let out = '';
    const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-200_000); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const p: HostProcess = { name, host, folder, roles, child, output: () => out };
    this.procs.set(name, p);
    return p;
  }

  /** Live driver actors of the RG whose pid runs on a host. */
  async actorsOn(hostName: HostName, role = 'driver:write'): Promise<string[]> {
    const pids = new Set(this.host(hostName).pids());
    const ids = await this.admin.zrangebyscore(keys.alive(this.rg.gatewayKey, role), Date.now() - 60_000, '+inf');
    const out: string[] = [];
    for (const id of ids) {
      const h = await this.admin.hgetall(keys.actor(this.rg.gatewayKey, id));
      if (h.pid && pids.has(Number(h.pid))) out.push(id);
    }
    return out;
  }

  /** Jobs done so far by the RG's driver actors on a host (their heartbeats count them). */
  async jobsOn(hostName: HostName): Promise<number> {
    const pids = new Set(this.host(hostName).pids());
    let n = 0;
    for (const role of RG_ROLES) {
      for (const id of await this.admin.zrangebyscore(keys.alive(this.rg.gatewayKey, role), '-inf', '+inf')) {
        const h = await this.admin.hgetall(keys.actor(this.rg.gatewayKey, id));
        if (h.pid && pids.has(Number(h.pid))) n += Number(h.jobs ?? 0);
      }
    }
    return n;
  }

  /** Waits until every driver role of the RG has a live actor on the worker host. */
  async waitWorker(name: 'worker1' | 'worker2'): Promise<void> {
    for (const role of RG_ROLES) await waitFor(`a live ${role} actor on ${name}`, async () => (await this.actorsOn(name, role)).length > 0);
  }

  /** kill -9 of every process of a host (a crash); boot() gives it a fresh /dev/shm and tmp. */
  async crash(hostName: HostName): Promise<void> {
    await this.host(hostName).crash();
  }

  /** Stops one `sgw start` gracefully. */
  async stop(name: string): Promise<void> {
    const p = this.procs.get(name);
    if (p) await stopChild(p.child, 20_000);
  }

  remove(): void {
    this.admin?.disconnect();
    this.bed.removeSync();
    cleanup([...this.folders.values()].map((f) => f.dir));
  }
}
