// Starts a private redis-server on a free loopback port for one test file, and stops it after.
// Tests never touch a Redis on 6379 that may already run on the machine.
import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { RedisClient } from '../../queues/redis.js';
import { startRedisServer, type RedisServer } from '../../actors/supervisor/embedded-redis.js';
import { processAlive } from '../../actors/supervisor/processes.js';

let shared: Promise<RedisServer> | null = null;
/** The server running now (a restart replaces it). */
let current: RedisServer | null = null;

/** One server per test process (ava runs each test file in its own process). */
export function testRedis(): Promise<RedisServer> {
  if (!shared) {
    shared = startRedisServer({ quiet: true });
    // 'exit' handlers cannot wait: kill the server synchronously, or it would outlive the
    // worker and keep ava's output pipe open.
    void shared.then((s) => {
      current = s;
      process.once('exit', () => {
        try {
          process.kill(current!.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        rmSync(current!.dir, { recursive: true, force: true });
      });
    });
  }
  return shared;
}

/**
 * Restarts the test Redis as an operator would: SHUTDOWN SAVE (its data written to dump.rdb),
 * `downMs` with nothing listening, then a new server on the same port and folder that loads the
 * dump. Every client sees its connections drop and has to reconnect.
 */
export async function restartTestRedis(downMs = 1000): Promise<RedisServer> {
  const old = await testRedis();
  const client = new Redis(old.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  await client.call('SHUTDOWN', 'SAVE').catch(() => undefined); // the connection closes as it answers
  client.disconnect();
  const deadline = Date.now() + 10_000;
  while (processAlive(old.pid)) {
    if (Date.now() > deadline) throw new Error('redis-server did not shut down within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, downMs));
  const next = await startRedisServer({ quiet: true, port: old.port, dir: old.dir });
  current = next;
  shared = Promise.resolve(next);
  return next;
}

/** The Redis a test file's gateways use: the `redis` key of their configs, and a client of it. */
export interface TestRedisTarget {
  /** The value of the `redis` config key (a URL or an object). */
  config: string | Record<string, unknown>;
  /** A new client (the caller disconnects it). */
  client(): RedisClient;
}

let chosen: (() => Promise<TestRedisTarget>) | null = null;
let target: Promise<TestRedisTarget> | null = null;

/**
 * Makes this test file's gateways use another deployment (a Sentinel set, a Cluster, TLS) instead
 * of the private server; call it at the top of the file, before any hook runs. Started once.
 */
export function useTestRedis(start: () => Promise<TestRedisTarget>): void {
  chosen = start;
  target = null;
}

/** What the file's gateways connect to (the private server unless useTestRedis chose otherwise). */
export function testRedisTarget(): Promise<TestRedisTarget> {
  target ??= chosen ? chosen() : testRedis().then((s) => ({
    config: s.url,
    client: () => {
      const client = new Redis(s.url);
      client.on('error', () => {});
      return client;
    },
  }));
  return target;
}
