// Real Redis deployments on loopback for tests: a server with TLS (certificates made by openssl),
// a Sentinel set (a master, replicas, sentinels) and a Redis Cluster (masters with a replica
// each). Every server is a redis-server child process with its own folder and port; kill() and
// restart() act on one of them as an outage would. Whatever is still running when the test
// process exits is killed with it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort, tiedToParent } from '../../actors/supervisor/embedded-redis.js';
import { waitFor } from './gateway.js';

const running = new Set<ChildProcess>();
const folders = new Set<string>();
process.once('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

// A test process killed outright (ava's timeout) runs no exit handler: a watchdog shell notices
// that it is gone and kills the servers it left (their pids are kept in a file).
let pidFile: string | null = null;
function watchServers(): void {
  if (!pidFile) {
    pidFile = join(mkdtempSync(join(tmpdir(), 'sgw-watchdog-')), 'pids');
    writeFileSync(pidFile, '');
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 $(cat '${pidFile}') 2>/dev/null; rm -rf '${dirname(pidFile)}'`;
    // Started in the background of a shell that exits at once: the watchdog is no child of ours.
    spawn('sh', ['-c', `(${script}) >/dev/null 2>&1 &`], { detached: true, stdio: 'ignore' }).unref();
  }
  writeFileSync(pidFile, [...running].map((c) => c.pid).join(' '));
}

function tempFolder(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.add(dir);
  return dir;
}

/** A client of one server, on its plain port. */
export type AdminClient = Redis;

/** One redis-server (a data node or a sentinel) with its config file and folder. */
export class RedisNode {
  child: ChildProcess | null = null;

  constructor(
    readonly port: number, readonly dir: string, private readonly args: string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  /** Starts the server and waits until it answers PING. */
  async start(): Promise<void> {
    const child = spawn(...tiedToParent('redis-server', this.args, 'KILL'), { cwd: this.dir, stdio: ['ignore', 'ignore', 'inherit'] });
    this.child = child;
    running.add(child);
    watchServers();
    child.once('exit', () => running.delete(child));
    const admin = this.admin({ retryStrategy: () => 50, maxRetriesPerRequest: 1 });
    try {
      await waitFor(`redis-server on port ${this.port}`, async () => child.exitCode === null && (await admin.ping()) === 'PONG');
    } finally {
      admin.disconnect();
    }
  }

  /** An administration client of this node (the caller disconnects it). */
  admin(extra: object = {}): AdminClient {
    const client = new Redis({ host: '127.0.0.1', port: this.port, ...extra });
    client.on('error', () => {});
    return client;
  }

  /** Runs one command on this node alone. */
  async command(...args: (string | number)[]): Promise<unknown> {
    const admin = this.admin({ maxRetriesPerRequest: 1 });
    try {
      return await admin.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      admin.disconnect();
    }
  }

  /**
   * Kills the process (SIGKILL by default: a crash, no chance to write anything) and waits for it
   * to be gone; a server that ignores SIGTERM for 10 s (stopped, say) gets SIGKILL.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT'); // a paused server handles no signal but this one
    child.kill(signal);
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(force);
  }

  /** Stops the process without letting it exit (SIGSTOP: a hung server); resume() lets it go on. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts it again on the same port and folder (after kill()). */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }
}

const DATA_NODE = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--loglevel', 'warning'];

/** A data node on a free port, in a folder of its own (not started). */
async function dataNode(prefix: string, extra: string[] = [], port?: number): Promise<RedisNode> {
  const p = port ?? (await freePort());
  const dir = tempFolder(prefix);
  return new RedisNode(p, dir, ['--port', String(p), '--dir', dir, ...DATA_NODE, ...extra]);
}

// ---------------------------------------------------------------------------------------------
// TLS

/** A CA, and a server certificate it signed for 127.0.0.1 and localhost; PEM file paths. */
export interface TestCa {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
}

/** Makes a CA and a server certificate with openssl, in a fresh folder. */
export function makeTestCa(name = 'sgw-test-ca'): TestCa {
  const dir = tempFolder('sgw-ca-');
  const file = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-new', '-nodes', '-newkey', 'rsa:2048', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', `/CN=${name}`);
  openssl('req', '-new', '-nodes', '-newkey', 'rsa:2048', '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.pem'), '-days', '2', '-extfile', file('ext.cnf'));
  return { dir, ca: file('ca.pem'), serverCert: file('server.pem'), serverKey: file('server.key') };
}

export interface TlsRedis {
  node: RedisNode;
  /** The TLS port (the node's `port` is a plain one, for administration from the test). */
  tlsPort: number;
  ca: TestCa;
  stop(): Promise<void>;
}

/** A redis-server that serves TLS on tlsPort with a certificate of `ca` (and plain TCP on node.port). */
export async function startTlsRedis(ca = makeTestCa(), extra: string[] = []): Promise<TlsRedis> {
  const tlsPort = await freePort();
  const node = await dataNode('sgw-redis-tls-', [
    '--tls-port', String(tlsPort), '--tls-cert-file', ca.serverCert, '--tls-key-file', ca.serverKey,
    '--tls-ca-cert-file', ca.ca, '--tls-auth-clients', 'no', ...extra,
  ]);
  await node.start();
  return { node, tlsPort, ca, stop: () => node.kill('SIGTERM') };
}

// ---------------------------------------------------------------------------------------------
// Sentinel

export interface SentinelSet {
  name: string;
  /** Data nodes, the first started as the master. */
  nodes: RedisNode[];
  sentinels: RedisNode[];
  /** The `redis` key of a gateway using this set. */
  config: { sentinels: string[]; name: string };
  /** The node the sentinels name as master now. */
  master(): Promise<RedisNode>;
  /** A client that follows the master through the sentinels (the caller disconnects it). */
  client(): Redis;
  stop(): Promise<void>;
}

export interface SentinelOptions {
  replicas?: number;
  sentinels?: number;
  name?: string;
  /** How long a master may be silent before the sentinels call it down. */
  downAfterMs?: number;
}

/** Replicas the master counts as connected (INFO replication). */
/**
 * Replicas the master streams to. One still waiting for its first full sync (Redis delays a
 * diskless sync by 5 s for more replicas to join) counts in connected_slaves but not here: WAIT
 * would not wait for it, and pausing it would test nothing.
 */
async function connectedReplicas(master: CommandNode): Promise<number> {
  return [...String(await master.command('INFO', 'replication')).matchAll(/^slave\d+:.*state=online/gm)].length;
}

export interface ReplicatedRedis {
  master: RedisNode;
  replicas: RedisNode[];
  stop(): Promise<void>;
}

/** A master and its replicas, in sync (no sentinel: nothing fails over). */
export async function startReplicated(count = 1): Promise<ReplicatedRedis> {
  const master = await dataNode('sgw-redis-m-');
  await master.start();
  const replicas: RedisNode[] = [];
  for (let i = 0; i < count; i++) {
    const replica = await dataNode('sgw-redis-r-', ['--replicaof', '127.0.0.1', String(master.port)]);
    await replica.start();
    replicas.push(replica);
  }
  await waitFor('the replicas to connect', async () => (await connectedReplicas(master)) >= count);
  return { master, replicas, stop: async () => { await Promise.all([master, ...replicas].map((n) => n.kill('SIGTERM'))); } };
}

/** A master, its replicas and sentinels watching it, all in sync and aware of each other. */
export async function startSentinelSet(opts: SentinelOptions = {}): Promise<SentinelSet> {
  const name = opts.name ?? 'sgwmaster';
  const { master, replicas } = await startReplicated(opts.replicas ?? 2);
  const nodes = [master, ...replicas];
  const sentinels: RedisNode[] = [];
  for (let i = 0; i < (opts.sentinels ?? 3); i++) {
    const port = await freePort();
    const dir = tempFolder('sgw-sentinel-');
    // Sentinel rewrites its config file as it learns the topology: it must be its own, writable.
    writeFileSync(join(dir, 'sentinel.conf'), [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'loglevel warning',
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`, '',
    ].join('\n'));
    const sentinel = new RedisNode(port, dir, [join(dir, 'sentinel.conf'), '--sentinel']);
    await sentinel.start();
    sentinels.push(sentinel);
  }
  const set: SentinelSet = {
    name, nodes, sentinels,
    config: { sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`), name },
    async master() {
      for (const s of sentinels) {
        try {
          const [, port] = (await s.command('SENTINEL', 'get-master-addr-by-name', name)) as [string, string];
          const node = nodes.find((n) => n.port === Number(port));
          if (node) return node;
        } catch {
          // that sentinel is down: ask the next
        }
      }
      throw new Error('no sentinel names a master');
    },
    client() {
      const client = new Redis({ sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name, maxRetriesPerRequest: 3 });
      client.on('error', () => {});
      return client;
    },
    async stop() {
      await Promise.all([...sentinels, ...nodes].map((n) => n.kill('SIGTERM')));
    },
  };
  await sentinelsSettled({ name, nodes, sentinels });
  return set;
}

/** A server a test can send commands to (a RedisNode here, a Redis of the multi-host bed). */
export interface CommandNode {
  command(...args: (string | number)[]): Promise<unknown>;
}

/**
 * Waits until a failover can happen: the replicas in sync with the first node (the master) and
 * every sentinel aware of the replicas and of the other sentinels.
 */
export async function sentinelsSettled(set: { name: string; nodes: readonly CommandNode[]; sentinels: readonly CommandNode[] }): Promise<void> {
  const { name, nodes, sentinels } = set;
  await waitFor('the sentinel set to settle', async () => {
    if ((await connectedReplicas(nodes[0]!)) < nodes.length - 1) return false;
    for (const s of sentinels) {
      const known = (await s.command('SENTINEL', 'replicas', name)) as unknown[];
      const peers = (await s.command('SENTINEL', 'sentinels', name)) as unknown[];
      if (known.length < nodes.length - 1 || peers.length < sentinels.length - 1) return false;
    }
    return true;
  });
}

/** Waits until the sentinels name another master than `old` and it takes writes. */
export async function waitForNewMaster<N extends CommandNode>(set: { master(): Promise<N> }, old: N): Promise<N> {
  return waitFor('a new master', async () => {
    const m = await set.master();
    if (m === old) return null;
    const role = (await m.command('ROLE')) as [string];
    return role[0] === 'master' ? m : null;
  });
}

// ---------------------------------------------------------------------------------------------
// Cluster

export interface RedisClusterSet {
  nodes: RedisNode[];
  /** The `redis` key of a gateway using this cluster. */
  config: { cluster: string[] };
  /** Nodes that are masters now, with the number of keys each holds. */
  masters(): Promise<{ node: RedisNode; keys: number }[]>;
  /** A cluster client (the caller disconnects it). */
  client(): Cluster;
  /** Waits until every node says the cluster is ok and each master has a linked replica. */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** How long a node may be silent before the others fail it over. */
  nodeTimeoutMs?: number;
}

function clusterClient(nodes: RedisNode[]): Cluster {
  const client = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { redisOptions: { maxRetriesPerRequest: 3 }, slotsRefreshInterval: 1000 });
  client.on('error', () => {});
  return client;
}

/** Masters with replicas each, formed by `redis-cli --cluster create`. */
export async function startCluster(opts: ClusterOptions = {}): Promise<RedisClusterSet> {
  const masters = opts.masters ?? 3;
  const perMaster = opts.replicasPerMaster ?? 1;
  const nodes: RedisNode[] = [];
  for (let i = 0; i < masters * (1 + perMaster); i++) {
    const node = await dataNode('sgw-redis-c-', [
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2000),
      // A replica may always take over, however long it was out of touch (tests kill masters under load).
      '--cluster-replica-validity-factor', '0',
    ]);
    await node.start();
    nodes.push(node);
  }
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(perMaster), '--cluster-yes'], { stdio: 'pipe' });
  const set: RedisClusterSet = {
    nodes,
    config: { cluster: nodes.slice(0, 2).map((n) => `127.0.0.1:${n.port}`) },
    async masters() {
      const out: { node: RedisNode; keys: number }[] = [];
      for (const node of nodes) {
        if (node.child?.exitCode !== null || node.child.signalCode !== null) continue;
        const role = (await node.command('ROLE').catch(() => null)) as [string] | null;
        if (role?.[0] === 'master') out.push({ node, keys: Number(await node.command('DBSIZE')) });
      }
      return out;
    },
    client: () => clusterClient(nodes),
    async settled() {
      await waitFor('the cluster to settle', async () => {
        const live = nodes.filter((n) => n.child?.exitCode === null && n.child.signalCode === null);
        let linkedReplicas = 0;
        for (const n of live) {
          if (!/cluster_state:ok/.test(String(await n.command('CLUSTER', 'INFO')))) return false;
          const role = (await n.command('ROLE')) as [string, ...unknown[]];
          if (role[0] === 'slave' && role[3] === 'connected') linkedReplicas++;
        }
        return linkedReplicas >= masters * perMaster - (nodes.length - live.length);
      });
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    },
  };
  await set.settled();
  return set;
}

/** A folder for files a test writes next to its topology (removed when the process exits). */
export function scratchFolder(): string {
  const dir = tempFolder('sgw-scratch-');
  mkdirSync(dir, { recursive: true });
  return dir;
}
