// Starts a private redis-server on a free loopback port for one test file, and stops it after.
// Tests never touch a Redis on 6379 that may already run on the machine.
import { rmSync } from 'node:fs';
import { startRedisServer, type RedisServer } from '../../actors/embedded-redis.js';

let shared: Promise<RedisServer> | null = null;

/** One server per test process (ava runs each test file in its own process). */
export function testRedis(): Promise<RedisServer> {
  if (!shared) {
    shared = startRedisServer({ quiet: true });
    // 'exit' handlers cannot wait: kill the server synchronously, or it would outlive the
    // worker and keep ava's output pipe open.
    void shared.then((s) => process.once('exit', () => {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      rmSync(s.dir, { recursive: true, force: true });
    }));
  }
  return shared;
}
