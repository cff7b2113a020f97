// The gateway's private redis-server, run by `sgw start` when the config names no Redis. It keeps
// the gateway's state (namespace, nonces, driver bundles) in an append-only file under
// <state.dir>/redis, answers only to a password generated once per gateway (a 0600 file in that
// 0700 folder), is restarted by sgw start when it dies, and dies with it. The other commands
// (sgw status, sgw dashboard, sgw driver publish) find it through the same folder.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../proto/config/config.js';
import { redisAt, type RedisTarget } from '../../queues/redis.js';
import { processAlive } from './processes.js';
import { startRedisServer, type RedisServer, type StartRedisOptions } from './embedded-redis.js';

const RESTART_MIN_MS = 200;
const RESTART_MAX_MS = 5_000;
/** A server left running by an earlier start gets this long to flush and exit before SIGKILL. */
const STRAY_STOP_MS = 30_000;

/** Where the private Redis of this config keeps its files. */
export function stateRedisPaths(config: GatewayConfig) {
  const dir = join(config.state.dir, 'redis');
  return {
    dir,
    password: join(dir, 'password'),
    pid: join(dir, 'redis.pid'),
    /** The port of the running server, for the other commands (its pid is in the pid file). */
    endpoint: join(dir, 'endpoint.json'),
    log: join(dir, 'redis.log'),
  };
}

/** The gateway's Redis password: made on first use, readable by its owner only. */
function passwordOf(file: string): string {
  try {
    chmodSync(file, 0o600);
    return readFileSync(file, 'utf8').trim();
  } catch {
    const password = randomBytes(32).toString('hex');
    writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  }
}

/**
 * The pid of a redis-server running on this folder (its pid file names a live process whose working
 * folder is this one), or null. Checking the folder makes a reused pid harmless.
 */
export function serverOnFolder(dir: string, pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    return realpathSync(`/proc/${pid}/cwd`) === realpathSync(dir) ? pid : null;
  } catch {
    return null;
  }
}

/** Stops a server an earlier start left behind, so two never write the same files. */
async function stopStray(pid: number, logger: Logger): Promise<void> {
  logger.warn({ pid }, 'a redis-server left running by an earlier start holds the state folder: stopping it');
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + STRAY_STOP_MS;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The running private Redis, kept running: restarted on the same port when it dies. */
export class StateRedis {
  private stopping = false;
  private failures = 0;

  private constructor(
    private server: RedisServer, private readonly options: StartRedisOptions, private readonly endpointFile: string, private readonly logger: Logger,
  ) {
    this.watch(server);
  }

  static async start(config: GatewayConfig, logger: Logger): Promise<StateRedis> {
    const paths = stateRedisPaths(config);
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    chmodSync(paths.dir, 0o700);
    const stray = serverOnFolder(paths.dir, paths.pid);
    if (stray !== null) await stopStray(stray, logger);
    rmSync(paths.endpoint, { force: true });
    const options: StartRedisOptions = {
      quiet: true, dir: paths.dir, password: passwordOf(paths.password), pidFile: paths.pid, logFile: paths.log,
      persist: { appendfsync: config.state.appendfsync },
    };
    const server = await startRedisServer(options);
    writeFileSync(paths.endpoint, `${JSON.stringify({ port: server.port })}\n`, { mode: 0o600 });
    return new StateRedis(server, { ...options, port: server.port }, paths.endpoint, logger);
  }

  get url(): string {
    return this.server.url;
  }

  get pid(): number {
    return this.server.pid;
  }

  /** A server that dies is started again on the same port, so every actor's URL stays right. */
  private watch(server: RedisServer): void {
    const startedAt = Date.now();
    void server.exited.then(async () => {
      if (this.stopping) return;
      this.failures = Date.now() - startedAt > 30_000 ? 1 : this.failures + 1;
      const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (this.failures - 1));
      this.logger.error({ pid: server.pid, restartInMs: delay }, 'the private redis-server exited; restarting it');
      await new Promise((r) => setTimeout(r, delay));
      if (this.stopping) return;
      try {
        this.server = await startRedisServer(this.options);
        this.logger.info({ pid: this.server.pid }, 'the private redis-server is back');
        this.watch(this.server);
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'the private redis-server did not start again');
        this.watch(server); // its exit has happened: this schedules the next attempt at once
      }
    });
  }

  /** The server is going down with us (a Ctrl-C reached it too): do not start it again. */
  letGo(): void {
    this.stopping = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.server.stop();
    rmSync(this.endpointFile, { force: true });
  }
}

/**
 * The URL of this gateway's running private Redis, for commands other than `sgw start`. It exists
 * only while the gateway runs: its data is in files no other server may open meanwhile.
 */
export function runningStateRedisUrl(config: GatewayConfig): string {
  const paths = stateRedisPaths(config);
  const pid = serverOnFolder(paths.dir, paths.pid);
  let port: number | undefined;
  try {
    port = (JSON.parse(readFileSync(paths.endpoint, 'utf8')) as { port?: number }).port;
  } catch {
    // not started yet, or stopped
  }
  if (pid === null || port === undefined) {
    throw new Error(`this gateway's private redis-server (${paths.dir}) is not running: start the gateway first `
      + `(sgw start${config.file ? ` --config ${config.file}` : ''}), or set "redis" (or SGW_REDIS_URL) to a shared Redis`);
  }
  return `redis://:${readFileSync(paths.password, 'utf8').trim()}@127.0.0.1:${port}`;
}

/** The Redis a command of this config talks to: the configured one, else the gateway's private one. */
export function redisTargetOf(config: GatewayConfig): RedisTarget {
  return config.redis ?? redisAt(runningStateRedisUrl(config));
}
