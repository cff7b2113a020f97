// Redis across the bed's hosts: one data node (AOF on, its files on the machine's disk, so they
// outlive a host crash) and one sentinel per Redis host; the first host's node starts as master.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from '../support/gateway.js';
import { sentinelsSettled } from '../support/redis-topologies.js';
import type { Host } from './bed.js';

export const DATA_PORT = 7379;
export const SENTINEL_PORT = 27379;

/** A redis-server (data node or sentinel) on a host of the bed. */
export class HostRedis {
  child: ChildProcess | null = null;

  constructor(readonly host: Host, readonly port: number, private readonly args: string[]) {}

  get address(): string {
    return `${this.host.address}:${this.port}`;
  }

  admin(): Redis {
    const client = new Redis({ host: this.host.address, port: this.port, maxRetriesPerRequest: 1, retryStrategy: () => 100, connectTimeout: 2000 });
    client.on('error', () => {});
    return client;
  }

  async command(...args: (string | number)[]): Promise<unknown> {
    const admin = this.admin();
    try {
      return await admin.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      admin.disconnect();
    }
  }

  async start(): Promise<void> {
    const child = this.host.spawn('redis-server', this.args, { stdio: ['ignore', 'ignore', 'inherit'] });
    this.child = child;
    await waitFor(`redis-server on ${this.address}`, async () => child.exitCode === null && (await this.command('PING')) === 'PONG');
  }

  /** kill -9 (a crash) and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await gone;
  }
}

export interface HostSentinels {
  name: string;
  nodes: HostRedis[];
  sentinels: HostRedis[];
  /** The `redis` key of the gateways' configs. */
  config: { sentinels: string[]; name: string };
  master(): Promise<HostRedis>;
  client(): Redis;
  /** What every data node and sentinel logged, each line prefixed with its host, for a failing test. */
  logs(): string;
}

/** A data node and a sentinel on each host; waits until replicas and sentinels all know each other. */
export async function startHostSentinels(hosts: Host[], name = 'sgwbed'): Promise<HostSentinels> {
  const [first] = hosts;
  if (!first) throw new Error('no Redis host');
  const nodes: HostRedis[] = [];
  for (const h of hosts) {
    const dir = join(h.dir, 'redis');
    mkdirSync(dir, { recursive: true });
    const args = [
      '--bind', h.address, '--port', String(DATA_PORT), '--dir', dir, '--protected-mode', 'no',
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction', '--loglevel', 'notice', '--logfile', join(dir, 'redis.log'),
      ...(h === first ? [] : ['--replicaof', first.address, String(DATA_PORT)]),
    ];
    const node = new HostRedis(h, DATA_PORT, args);
    await node.start();
    nodes.push(node);
  }
  const sentinels: HostRedis[] = [];
  for (const h of hosts) {
    const dir = join(h.dir, 'sentinel');
    mkdirSync(dir, { recursive: true });
    // Sentinel rewrites its config file as it learns the topology: each its own, writable.
    writeFileSync(join(dir, 'sentinel.conf'), [
      `port ${SENTINEL_PORT}`, `bind ${h.address}`, 'protected-mode no', `dir ${dir}`, 'loglevel notice', `logfile ${join(dir, 'sentinel.log')}`,
      `sentinel monitor ${name} ${first.address} ${DATA_PORT} 2`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`, '',
    ].join('\n'));
    const sentinel = new HostRedis(h, SENTINEL_PORT, [join(dir, 'sentinel.conf'), '--sentinel']);
    await sentinel.start();
    sentinels.push(sentinel);
  }
  const set: HostSentinels = {
    name, nodes, sentinels,
    config: { sentinels: sentinels.map((s) => s.address), name },
    async master() {
      for (const s of sentinels) {
        try {
          const [addr] = (await s.command('SENTINEL', 'get-master-addr-by-name', name)) as [string, string];
          const node = nodes.find((n) => n.host.address === addr);
          if (node) return node;
        } catch {
          // that sentinel's host is down: ask the next
        }
      }
      throw new Error('no sentinel names a master');
    },
    logs() {
      return hosts.flatMap((h) => ['redis/redis.log', 'sentinel/sentinel.log'].map((f) => {
        const file = join(h.dir, f);
        return existsSync(file) ? readFileSync(file, 'utf8').split('\n').map((l) => `[${h.name} ${f.split('/')[0]}] ${l}`).join('\n') : '';
      })).join('\n');
    },
    client() {
      const client = new Redis({ sentinels: sentinels.map((s) => ({ host: s.host.address, port: s.port })), name, maxRetriesPerRequest: 3 });
      client.on('error', () => {});
      return client;
    },
  };
  await sentinelsSettled({ name, nodes, sentinels });
  return set;
}
