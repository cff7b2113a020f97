// A private redis-server for one gateway (or one test run) when no Redis URL is configured.
// It binds to loopback on a free port, keeps nothing on disk, and dies with its parent.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  pid: number;
  /** Its working folder (removed by stop()). */
  dir: string;
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

export interface StartRedisOptions {
  binary?: string;
  port?: number;
  quiet?: boolean;
  /** Working folder to use (and load a saved dump.rdb from); default: a fresh temporary one. */
  dir?: string;
}

export async function startRedisServer(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = opts.binary ?? process.env.SGW_REDIS_SERVER ?? 'redis-server';
  const probe = spawnSync(binary, ['--version'], { stdio: 'ignore' });
  if (probe.error) throw new RedisMissingError(binary);
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sgw-redis-'));
  const child: ChildProcess = spawn(binary, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--maxmemory-policy', 'noeviction', '--loglevel', 'warning',
  ], { stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    child.once('exit', (code) => reject(new Error(`redis-server exited early with code ${code}`)));
    const tryConnect = () => {
      pingRedis(port).then((ok) => {
        if (ok) return resolve();
        if (Date.now() > deadline) return reject(new Error('redis-server did not start within 10 s'));
        setTimeout(tryConnect, 20);
      }, reject);
    };
    tryConnect();
  });
  child.removeAllListeners('exit');
  // Stopping is explicit (stop()); the handle alone must not keep the owning process alive.
  child.unref();
  let stopped: Promise<void> | null = null;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    dir,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.ref(); // keep the process alive until the server is really gone
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }).then(() => rmSync(dir, { recursive: true, force: true }));
      return stopped;
    },
  };
}

/** True when something on the port answers PING like Redis does. */
function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    let got = '';
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { got += d.toString(); if (got.includes('\r\n')) done(got.startsWith('+PONG')); });
  });
}
