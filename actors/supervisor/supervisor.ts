// `sgw start`: runs the actors of this host's roles as child processes, restarts a crashed one
// with back-off, kills one whose event loop stops beating, swaps driver actors to a newly
// published version (start new, wait until ready, then drain old) and stops it all on SIGTERM.
import { fork, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../proto/config/config.js';
import { EXIT, NOT_NEEDED } from '../exit-codes.js';
import { isSingleExecutable, packagedFile } from '../../drivers/packaged-files.js';
import { withMallocTuning } from './malloc.js';
import { withHeapFlags } from './heap.js';
import { driverProcesses, driverRole } from './driver-processes.js';
import { CRAWL_MODES, DRIVER_MODES, keys, MODES_OF_GATEWAY, NEEDS_DRIVER, type DriverMode } from '../../queues/names.js';
import { connectRedis, whenReady, type RedisClient, type RedisTarget } from '../../queues/redis.js';
import { DriverVersionWatch, type DriverVersion } from '../../drivers/version-watch.js';
import { bundleRefused } from '../refusal-log.js';
import { readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 10_000;
const HEALTHY_AFTER_MS = 30_000;
/** How long a cleanly exited actor's IPC channel may take to close before its exit is judged. */
const CHANNEL_CLOSE_MS = 1000;
const STARTUP_GRACE_MS = 45_000;

export interface Roles {
  http: boolean;
  cache: boolean;
  /** AG only: the crawl actor (one leads per gateway, the others stand by). */
  crawl: boolean;
  drivers: Set<DriverMode>;
}

/** Parses "--roles http,cache,driver:read,driver,crawl" (driver = every mode). */
export function parseRoles(spec: string | undefined, config: GatewayConfig): Roles {
  const isAg = config.gateway.type === 'AG';
  // The AG's refresh calls are served by its crawl actor, not by a driver actor.
  const gwModes = MODES_OF_GATEWAY[config.gateway.type].filter((m) => !isAg || !CRAWL_MODES.includes(m));
  const roles: Roles = { http: false, cache: false, crawl: false, drivers: new Set() };
  for (const raw of (spec ?? (isAg ? 'http,cache,driver,crawl' : 'http,cache,driver')).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw === 'http') roles.http = true;
    else if (raw === 'cache') roles.cache = true;
    else if (raw === 'crawl') {
      if (!isAg) throw new Error(`role crawl: only an acquisition gateway crawls (this is a ${config.gateway.type})`);
      roles.crawl = true;
    }
    else if (raw === 'driver') gwModes.forEach((m) => roles.drivers.add(m));
    else if (raw.startsWith('driver:') && DRIVER_MODES.includes(raw.slice(7) as DriverMode)) {
      const mode = raw.slice(7) as DriverMode;
      if (!gwModes.includes(mode)) {
        throw new Error(isAg && CRAWL_MODES.includes(mode) ? `role ${raw}: an AG serves ${mode} in its crawl actor (role crawl)` : `role ${raw}: a ${config.gateway.type} has no ${mode} mode`);
      }
      roles.drivers.add(mode);
    } else throw new Error(`unknown role "${raw}" (http, cache, driver, driver:<mode>${isAg ? ', crawl' : ''})`);
  }
  return roles;
}

interface Actor {
  role: string;
  args: string[];
  child: ChildProcess | null;
  ready: Promise<boolean>;
  /** When the actor last beat; 0 until its first beat (it is still starting). */
  lastBeat: number;
  startedAt: number;
  failures: number;
  retiring: boolean;
  /** The actor said it is not needed (NOT_NEEDED) and exits: not restarted. */
  notNeeded: boolean;
  version?: string;
}

export interface SupervisorOptions {
  config: GatewayConfig;
  configFile: string;
  redis: RedisTarget;
  /** Set for the private redis-server: its URL reaches the actors through SGW_REDIS_URL. */
  embeddedUrl?: string;
  roles: Roles;
  logger: Logger;
}

export class Supervisor {
  private readonly actors = new Set<Actor>();
  private readonly redis: RedisClient;
  private watch: DriverVersionWatch | null = null;
  private stopping = false;
  private swapping: Promise<void> = Promise.resolve();
  private readonly watchdog: NodeJS.Timeout;

  constructor(private readonly opts: SupervisorOptions) {
    this.redis = connectRedis(opts.redis, 'patient', 'sgw-supervisor');
    // A driver may legitimately block its loop for a whole call; beyond that it is stuck.
    const stuckMs = opts.config.limits.call_timeout_ms + 5_000;
    this.watchdog = setInterval(() => {
      for (const a of this.actors) {
        // A starting actor (loading its bundle, connecting) gets longer than a running one: on a
        // loaded machine start-up alone can outlast a call's deadline.
        const silentMs = a.lastBeat === 0 ? Date.now() - a.startedAt - STARTUP_GRACE_MS : Date.now() - a.lastBeat;
        if (a.child && !a.retiring && silentMs > stuckMs) {
          opts.logger.error({ role: a.role, pid: a.child.pid }, 'actor stopped beating; killing it');
          a.child.kill('SIGKILL');
        }
      }
    }, 1000);
  }

  async start(): Promise<void> {
    const { roles, logger } = this.opts;
    await whenReady(this.redis, 30_000);
    if (roles.http) this.spawn('http', roles.cache ? ['--with-cache'] : []);
    else if (roles.cache) this.spawn('cache', []);
    if (roles.drivers.size > 0 || roles.crawl) {
      const { config } = this.opts;
      // The newest publish this host ran survives restarts: a Redis client cannot roll the
      // gateway back to an older (validly signed) version while its supervisor is down either.
      this.watch = new DriverVersionWatch(this.redis, this.opts.redis, config.gateway.key, { key: config.gateway.private_key, floor: readSequenceFloor(config) });
      this.watch.on('refused', (err) => bundleRefused(this.redis, config.gateway.key, err, logger, 'keeping the running version'));
      this.watch.on('change', (v) => writeSequenceFloor(config, v.seq));
      // A gateway that serves without a driver (a UG) starts now and picks one up when published.
      const first = NEEDS_DRIVER[this.opts.config.gateway.type] ? await this.watch.first() : (await this.watch.check(), this.watch.version);
      if (first) this.startDrivers(first);
      this.watch.on('change', (v) => {
        this.swapping = this.swapping.then(() => this.swapTo(v));
      });
    }
    logger.info({ actors: [...this.actors].map((a) => a.role) }, 'supervisor started');
  }

  private startDrivers(v: DriverVersion): Actor[] {
    const started: Actor[] = [];
    // A mode the driver lacks is short-circuited: no actor serves it.
    const modes = [...this.opts.roles.drivers].filter((m) => v.modes.has(m));
    for (const group of driverProcesses(this.opts.config.actors, modes)) started.push(this.spawn(driverRole(group), ['--version', v.hash], v.hash));
    if (this.opts.roles.crawl) started.push(this.spawn('crawl', ['--version', v.hash], v.hash));
    return started;
  }

  /** Start the new version's actors; once they are ready, drain and stop the old ones. */
  private async swapTo(v: DriverVersion): Promise<void> {
    const log = this.opts.logger;
    const current = [...this.actors].filter((a) => (a.role.startsWith('driver:') || a.role === 'crawl') && !a.retiring);
    const old = current.filter((a) => a.version !== v.hash);
    if (current.length > 0 && old.length === 0) return; // already on this version
    log.info({ version: v.hash }, 'new driver version: starting its actors');
    const fresh = this.startDrivers(v);
    const ok = await Promise.all(fresh.map((a) => a.ready));
    if (ok.includes(false)) {
      log.error({ version: v.hash }, 'new driver version did not become ready; keeping the old actors');
      for (const a of fresh) this.retire(a);
      return;
    }
    for (const a of old) this.retire(a);
    log.info({ version: v.hash, retired: old.length }, 'driver version swapped');
  }

  private retire(a: Actor): void {
    a.retiring = true;
    a.child?.kill('SIGTERM');
  }

  private spawn(role: string, extra: string[], version?: string): Actor {
    const actor: Actor = {
      role, args: ['actor', role, '--config', this.opts.configFile, ...extra],
      child: null, ready: Promise.resolve(false), lastBeat: 0, startedAt: Date.now(), failures: 0, retiring: false, notNeeded: false,
    };
    if (version) actor.version = version;
    this.actors.add(actor);
    this.launch(actor);
    return actor;
  }

  private launch(a: Actor): void {
    const options: SpawnOptions = {
      env: withHeapFlags(withMallocTuning({ ...process.env, ...(this.opts.embeddedUrl ? { SGW_REDIS_URL: this.opts.embeddedUrl } : {}) }), a.role),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'], // ipc: ready and heartbeat messages
    };
    // The single executable is its own command line: it runs no script file.
    const child = isSingleExecutable()
      ? spawn(process.execPath, a.args, options)
      : fork(packagedFile('dist/actors/cli/cli.js'), a.args, options);
    a.child = child;
    a.startedAt = Date.now();
    a.lastBeat = 0;
    a.ready = new Promise<boolean>((resolve) => {
      child.on('message', (m: { type?: string }) => {
        a.lastBeat = Date.now();
        if (m?.type === 'ready') resolve(true);
        if (m?.type === NOT_NEEDED) a.notNeeded = true;
      });
      child.once('exit', () => resolve(false));
    });
    child.once('exit', (code, signal) => {
      // Its last messages travel on the IPC channel, which may still hold them when the exit is
      // seen: a clean exit is judged once the channel has closed (bounded: a process it started
      // may hold the channel open).
      if (code !== EXIT.OK || !child.connected) return this.exited(a, code, signal);
      let judged = false;
      const judge = () => {
        if (judged) return;
        judged = true;
        clearTimeout(timer);
        child.off('disconnect', judge);
        this.exited(a, code, signal);
      };
      const timer = setTimeout(judge, CHANNEL_CLOSE_MS);
      child.once('disconnect', judge);
    });
  }

  private exited(a: Actor, code: number | null, signal: NodeJS.Signals | null): void {
    a.child = null;
    const log = this.opts.logger;
    if (this.stopping || a.retiring || (code === EXIT.OK && a.notNeeded)) {
      this.actors.delete(a);
      if (!this.stopping && !a.retiring) log.info({ role: a.role }, 'actor not needed by this driver version; not restarted');
      return;
    }
    const uptime = Date.now() - a.startedAt;
    a.failures = uptime > HEALTHY_AFTER_MS ? 1 : a.failures + 1;
    const delay = code === EXIT.RECYCLE && a.failures <= 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (a.failures - 1));
    log.warn({ role: a.role, code, signal, restartInMs: delay }, 'actor exited; restarting');
    // Counted in Redis so that any http actor of the gateway, on any host, can report it.
    this.redis.hincrby(keys.restarts(this.opts.config.gateway.key), a.role, 1).catch(() => {});
    setTimeout(() => { if (!this.stopping && !a.retiring) this.launch(a); }, delay).unref();
  }

  /** Waits until every actor started so far is ready, at most timeoutMs; resolves with the roles of those not ready. */
  async settled(timeoutMs: number, onProgress: (ready: number, total: number) => void = () => {}): Promise<string[]> {
    const list = [...this.actors];
    const waiting = new Set(list);
    onProgress(0, list.length);
    const all = Promise.all(list.map((a) => a.ready.then((ok) => {
      if (!ok) return;
      waiting.delete(a);
      onProgress(list.length - waiting.size, list.length);
    })));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); })]);
    clearTimeout(timer);
    return [...new Set([...waiting].map((a) => a.role))];
  }

  /** Live child processes by role (for status and tests). */
  pids(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const a of this.actors) if (a.child?.pid) (out[a.role] ??= []).push(a.child.pid);
    return out;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.watchdog);
    this.watch?.close();
    // Front first: the http actor drains its in-flight requests while the driver actors that serve
    // them still run; stopped together, those requests would wait for their call deadline. One
    // deadline for the whole stop: whatever is left then is killed.
    const killAt = Date.now() + this.opts.config.limits.request_timeout_ms + 5_000;
    const isFront = (a: Actor) => a.role === 'http';
    const all = [...this.actors];
    await Promise.all(all.filter(isFront).map((a) => stopActor(a, killAt)));
    await Promise.all(all.filter((a) => !isFront(a)).map((a) => stopActor(a, killAt)));
    this.redis.disconnect();
  }
}

/** SIGTERM, then SIGKILL at killAt; resolves when the actor's process is gone. */
function stopActor(a: Actor, killAt: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const child = a.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), Math.max(0, killAt - Date.now()));
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

/** Where a supervisor keeps the publish sequence of the newest driver version it ran. */
function sequenceFile(config: GatewayConfig): string {
  return join(config.state.dir, `driver-sequence.${config.gateway.key}`);
}

function readSequenceFloor(config: GatewayConfig): number {
  try {
    const n = Number(readFileSync(sequenceFile(config), 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

function writeSequenceFloor(config: GatewayConfig, seq: number): void {
  try {
    mkdirSync(config.state.dir, { recursive: true });
    writeFileSync(`${sequenceFile(config)}.tmp`, `${seq}\n`);
    renameSync(`${sequenceFile(config)}.tmp`, sequenceFile(config));
  } catch {
    // A read-only state folder: the floor lives in memory until the next restart.
  }
}
