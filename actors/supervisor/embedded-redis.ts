// A private redis-server: for one gateway (state-redis.ts keeps its data in the state folder) or one
// test run (a temporary folder, nothing kept). It binds to loopback on a free port and dies with the
// process that started it: SIGTERM from the kernel when that process dies (setpriv --pdeathsig), so
// not even a kill -9 of the parent leaves it running.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  pid: number;
  /** Its working folder (removed by stop() when it was a temporary one). */
  dir: string;
  /** Resolves when the server exits, whoever ended it. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

export class RedisMissingError extends Error {
  override name = 'RedisMissingError';
  constructor(binary: string) {
    super(`${binary} was not found. Install Redis (Debian/Ubuntu: "sudo apt-get install redis-server"), ` +
      'or point sgw at a running one with "redis" in the config file or SGW_REDIS_URL.');
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** How the server keeps its data: an append-only file, flushed every second or before every answer. */
export interface RedisPersistence {
  appendfsync: 'everysec' | 'always';
}

export interface StartRedisOptions {
  binary?: string;
  port?: number;
  quiet?: boolean;
  /** Working folder to use (and load saved data from); default: a fresh temporary one, removed by stop(). */
  dir?: string;
  /** Keep data in an append-only file in dir; default: keep nothing (RDB only on SHUTDOWN SAVE). */
  persist?: RedisPersistence;
  /** Require this password (it is handed over on stdin, never on the command line). */
  password?: string;
  /** Write the server's pid here (removed by Redis on a clean shutdown). */
  pidFile?: string;
  /** Redis's own log file (default: its output goes to ours, or nowhere when quiet). */
  logFile?: string;
}

let setprivAvailable: boolean | null = null;
/** util-linux's setpriv sets the parent-death signal before it execs redis-server (Linux). */
function canSetPdeathsig(): boolean {
  setprivAvailable ??= !spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).error;
  return setprivAvailable;
}

/**
 * The command and arguments that run `command` so that the kernel sends it `signal` when the
 * process spawning it dies (however it dies), where setpriv is available; else unchanged.
 */
export function tiedToParent(command: string, args: readonly string[], signal: 'TERM' | 'KILL' = 'TERM'): [string, string[]] {
  return canSetPdeathsig() ? ['setpriv', ['--pdeathsig', signal, '--', command, ...args]] : [command, [...args]];
}

function serverArgs(opts: StartRedisOptions, port: number, dir: string): string[] {
  return [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    ...(opts.persist ? ['--appendonly', 'yes', '--appendfsync', opts.persist.appendfsync] : ['--appendonly', 'no']),
    ...(opts.pidFile ? ['--pidfile', opts.pidFile] : []),
    ...(opts.logFile ? ['--logfile', opts.logFile] : []),
    '--maxmemory-policy', 'noeviction', '--loglevel', 'warning',
  ];
}

export async function startRedisServer(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = opts.binary ?? process.env.SGW_REDIS_SERVER ?? 'redis-server';
  const probe = spawnSync(binary, ['--version'], { stdio: 'ignore' });
  if (probe.error) throw new RedisMissingError(binary);
  const port = opts.port ?? (await freePort());
  const temporary = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sgw-redis-'));
  // "-" reads configuration from stdin first: the password stays off the command line (ps).
  const args = [...(opts.password ? ['-'] : []), ...serverArgs(opts, port, dir)];
  const [command, argv] = tiedToParent(binary, args);
  const child: ChildProcess = spawn(command, argv, { stdio: [opts.password ? 'pipe' : 'ignore', opts.quiet ? 'ignore' : 'inherit', 'inherit'] });
  if (opts.password) child.stdin!.end(`requirepass "${opts.password}"\n`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let earlyExit: ((code: number | null) => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    let deadline = Date.now() + 10_000;
    earlyExit = (code) => reject(new Error(`redis-server exited early with code ${code}${opts.logFile ? ` (see ${opts.logFile})` : ''}`));
    child.once('exit', earlyExit);
    const tryConnect = () => {
      pingRedis(port, opts.password).then((answer) => {
        if (answer === 'pong') return resolve();
        // Loading a large append-only file takes as long as it takes: wait while it says so.
        if (answer === 'loading') deadline = Date.now() + 10_000;
        if (Date.now() > deadline) return reject(new Error('redis-server did not start within 10 s'));
        setTimeout(tryConnect, 20);
      }, reject);
    };
    tryConnect();
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  child.off('exit', earlyExit!);
  // Stopping is explicit (stop()); the handle alone must not keep the owning process alive.
  child.unref();
  let stopped: Promise<void> | null = null;
  return {
    url: opts.password ? `redis://:${opts.password}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    dir,
    exited,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.ref(); // keep the process alive until the server is really gone
        child.once('exit', () => resolve());
        child.kill('SIGTERM'); // Redis flushes its append-only file and exits
      }).then(() => {
        if (temporary) rmSync(dir, { recursive: true, force: true });
      });
      return stopped;
    },
  };
}

/** What the server on the port answers to (AUTH and) PING: ready, still loading its data, or nothing useful. */
function pingRedis(port: number, password?: string): Promise<'pong' | 'loading' | 'no'> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    let got = '';
    const done = (answer: 'pong' | 'loading' | 'no') => { sock.destroy(); resolve(answer); };
    sock.setTimeout(500, () => done('no'));
    sock.on('error', () => done('no'));
    sock.on('connect', () => sock.write(`${password ? `AUTH ${password}\r\n` : ''}PING\r\n`));
    sock.on('data', (d) => {
      got += d.toString();
      const lines = got.split('\r\n');
      if (lines.length <= (password ? 2 : 1)) return; // every reply is one line
      const last = lines[password ? 1 : 0]!;
      done(last.startsWith('+PONG') ? 'pong' : last.startsWith('-LOADING') ? 'loading' : 'no');
    });
  });
}
