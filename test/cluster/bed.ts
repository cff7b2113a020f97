// A bed of "hosts" on this machine for multi-host tests: each host is a network namespace with its
// own address on a bridge the bed makes (10.231.<n>.0/24), and a mount namespace of its own with
// its own /dev/shm and tmp (tmpfs), kept alive by an init process every process of the host joins
// (nsenter). Needs root. Names carry the owner's pid ("sgwbed-<pid>-<host>", bridge "sgwb<pid>",
// veths "sgwv<pid>h<i>"), so parallel runs never clash and a crashed run's leftovers are known by
// their dead owner and removed (reapLeftovers, the `bed-cli reap` watchdog, or `bed-cli down`).
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NS_PREFIX = 'sgwbed-';
const NS_NAME = /^sgwbed-(\d+)-([a-z0-9]+)$/;
const BRIDGE_NAME = /^sgwb(\d+)$/;
const VETH_NAME = /^sgwv(\d+)h\d+$/;
/** The bridge's own address in the bed's subnet (the test's side). */
const BRIDGE_HOST = 1;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip` that may fail (removing what is already gone). */
function ipQuiet(...args: string[]): void {
  spawnSync('ip', args, { stdio: 'ignore' });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Pids of every process in a network namespace. */
export function namespacePids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Kills every process of a namespace and waits (bounded) until none is left. */
function killNamespaceSync(ns: string): void {
  const deadline = Date.now() + 10_000;
  for (let pids = namespacePids(ns); pids.length > 0 && Date.now() < deadline; pids = namespacePids(ns)) {
    killPids(pids);
    spawnSync('sleep', ['0.05']);
  }
}

function bedRoot(owner: number): string {
  return join(tmpdir(), `sgwbed-${owner}`);
}

/** Removes one bed's namespaces (and their processes), bridge and folder, whatever is left of it. */
export function removeBed(owner: number): void {
  const prefix = `${NS_PREFIX}${owner}-`;
  for (const ns of listNamespaces().filter((n) => n.startsWith(prefix))) {
    killNamespaceSync(ns);
    ipQuiet('netns', 'del', ns);
  }
  // A namespace is freed by the kernel later, with its end of the veth: delete our end now.
  for (const link of links().filter((l) => Number(VETH_NAME.exec(l)?.[1]) === owner)) ipQuiet('link', 'del', link);
  ipQuiet('link', 'del', `sgwb${owner}`);
  rmSync(bedRoot(owner), { recursive: true, force: true });
}

function listNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(NS_PREFIX)) : [];
}

/** Owners (pids) of every bed on this machine, alive or not. */
export function bedOwners(): number[] {
  const owners = new Set<number>();
  for (const ns of listNamespaces()) {
    const m = NS_NAME.exec(ns);
    if (m) owners.add(Number(m[1]));
  }
  for (const link of links()) {
    const m = BRIDGE_NAME.exec(link) ?? VETH_NAME.exec(link);
    if (m) owners.add(Number(m[1]));
  }
  return [...owners];
}

/** Names of this machine's network interfaces. */
function links(): string[] {
  return ip('-o', 'link', 'show').split('\n').map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? '').filter(Boolean);
}

/** Removes the beds whose owner process is gone (a crashed or killed run). */
export function reapLeftovers(): number[] {
  const dead = bedOwners().filter((o) => o !== process.pid && !alive(o));
  for (const o of dead) removeBed(o);
  return dead;
}

/** A /24 in 10.231.0.0/16 that no interface of this machine uses yet. */
function freeSubnet(): number {
  const used = new Set([...ip('-o', 'addr').matchAll(/inet 10\.231\.(\d+)\./g)].map((m) => Number(m[1])));
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const n = ((start + i) % 250) + 1;
    if (!used.has(n)) return n;
  }
  throw new Error('no free 10.231.x.0/24 subnet');
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Run with the clock moved, as libfaketime's FAKETIME understands it (e.g. "+5m"). */
  clock?: string;
  stdio?: SpawnOptions['stdio'];
}

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1'];

/** One host of the bed: a network namespace, a mount namespace (its init process), an address. */
export class Host {
  private init: ChildProcess | null = null;
  /** Every process of the host runs with these variables (a clock offset, say). */
  clock: string | undefined;

  constructor(readonly name: string, readonly ns: string, readonly address: string, readonly veth: string, readonly dir: string) {}

  /** The host's own tmp folder (a tmpfs in its mount namespace; TMPDIR of its processes). */
  get tmp(): string {
    return join(this.dir, 'tmp');
  }

  /** Starts the host's init (new mount namespace with fresh /dev/shm and tmp) and waits until it is set up. */
  async boot(): Promise<void> {
    mkdirSync(this.tmp, { recursive: true });
    const script = `mount -t tmpfs -o size=256m tmpfs /dev/shm && mount -t tmpfs -o size=512m tmpfs '${this.tmp}' && exec sleep infinity`;
    const init = spawn('ip', ['netns', 'exec', this.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script], { stdio: 'ignore', detached: true });
    init.unref();
    this.init = init;
    const deadline = Date.now() + 30_000;
    // exec'd all the way down: the pid becomes "sleep" once both mounts are made.
    while (readComm(init.pid!) !== 'sleep') {
      if (init.exitCode !== null || Date.now() > deadline) throw new Error(`host ${this.name}: init did not start (exit ${init.exitCode})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  get initPid(): number {
    if (!this.init?.pid) throw new Error(`host ${this.name} is not booted`);
    return this.init.pid;
  }

  /** A process on this host: in its network and mount namespaces, with TMPDIR its own tmp. */
  spawn(command: string, args: string[], opts: RunOptions = {}): ChildProcess {
    return spawn('nsenter', ['-t', String(this.initPid), '-n', '-m', '--', command, ...args], {
      env: this.env(opts), cwd: opts.cwd, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
    });
  }

  /** A command on this host, to its end; its stdout. */
  run(command: string, args: string[], opts: RunOptions = {}): string {
    return execFileSync('nsenter', ['-t', String(this.initPid), '-n', '-m', '--', command, ...args], {
      env: this.env(opts), cwd: opts.cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  private env(opts: RunOptions): NodeJS.ProcessEnv {
    const clock = opts.clock ?? this.clock;
    const preload = clock ? LIBFAKETIME.find((p) => existsSync(p)) : undefined;
    if (clock && !preload) throw new Error('libfaketime is missing (Debian package faketime)');
    return {
      ...process.env, TMPDIR: this.tmp, ...opts.env,
      ...(clock ? { LD_PRELOAD: preload, FAKETIME: clock, FAKETIME_DONT_FAKE_MONOTONIC: '1' } : {}),
    };
  }

  /** Every process of the host (its init too). */
  pids(): number[] {
    return namespacePids(this.ns);
  }

  /** The host's processes other than init. */
  workload(): number[] {
    return this.pids().filter((p) => p !== this.init?.pid);
  }

  /** A crash of the whole host: kill -9 of every process in it (init too); boot() brings it back empty. */
  async crash(): Promise<void> {
    for (let pids = this.pids(); pids.length > 0; pids = this.pids()) {
      killPids(pids);
      await new Promise((r) => setTimeout(r, 50));
    }
    this.init = null;
  }

  /** Cuts the host off the network (its link down) or heals it. */
  link(up: boolean): void {
    ip('-n', this.ns, 'link', 'set', 'eth0', up ? 'up' : 'down');
  }
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

const CLI = fileURLToPath(new URL('./bed-cli.js', import.meta.url));
let watchdogStarted = false;

/**
 * A test process killed outright (ava's timeout) runs no exit hook: a shell outside it waits for
 * it to end and reaps the beds of dead owners.
 */
function startWatchdog(): void {
  if (watchdogStarted) return;
  watchdogStarted = true;
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; '${process.execPath}' '${CLI}' reap`;
  spawn('sh', ['-c', `(${script}) >/dev/null 2>&1 &`], { detached: true, stdio: 'ignore' }).unref();
}

/** The bed: a bridge and its hosts. */
export class Bed {
  readonly hosts = new Map<string, Host>();
  private removed = false;

  private constructor(readonly owner: number, readonly subnet: number, readonly bridge: string, readonly root: string) {}

  /** The test's own address on the bridge (the machine side). */
  get gateway(): string {
    return `10.231.${this.subnet}.${BRIDGE_HOST}`;
  }

  /** Makes the bridge and one booted host per name (names: [a-z0-9]+). */
  static async create(names: string[], owner = process.pid): Promise<Bed> {
    if (process.getuid?.() !== 0) throw new Error('the multi-host bed needs root (network and mount namespaces)');
    reapLeftovers();
    removeBed(owner); // a bed of this owner left over by a crashed earlier run in this very process
    const subnet = freeSubnet();
    const bed = new Bed(owner, subnet, `sgwb${owner}`, bedRoot(owner));
    const onExit = (): void => bed.removeSync();
    process.once('exit', onExit);
    startWatchdog();
    try {
      mkdirSync(bed.root, { recursive: true });
      ip('link', 'add', bed.bridge, 'type', 'bridge');
      ip('addr', 'add', `${bed.gateway}/24`, 'dev', bed.bridge);
      ip('link', 'set', bed.bridge, 'up');
      for (const [i, name] of names.entries()) {
        if (!/^[a-z0-9]+$/.test(name)) throw new Error(`host name ${name}: [a-z0-9]+ only`);
        const ns = `${NS_PREFIX}${owner}-${name}`;
        const veth = `sgwv${owner}h${i}`;
        const address = `10.231.${subnet}.${10 + i}`;
        ip('netns', 'add', ns);
        ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        ip('link', 'set', veth, 'master', bed.bridge, 'up');
        ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        const host = new Host(name, ns, address, veth, join(bed.root, name));
        await host.boot();
        bed.hosts.set(name, host);
      }
    } catch (err) {
      bed.removeSync();
      throw err;
    }
    return bed;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} in the bed`);
    return h;
  }

  /** Removes everything (idempotent; also run by the exit hook). */
  removeSync(): void {
    if (this.removed) return;
    this.removed = true;
    removeBed(this.owner);
  }
}
