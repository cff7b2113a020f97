// Redis connections, made one way everywhere. Two flavours: askers fail fast when Redis is away
// (so an HTTP request gets 503 at once instead of waiting in an offline queue), while workers
// and blocking loops wait and reconnect forever (BullMQ requires maxRetriesPerRequest: null).
import { Redis, type RedisOptions } from 'ioredis';

export type { Redis };

const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/** autoPipeline: commands issued in the same tick go out in one write (hot request paths). */
export function connectRedis(url: string, kind: 'fail-fast' | 'patient', name?: string, autoPipeline = false): Redis {
  const opts: RedisOptions = kind === 'fail-fast'
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, connectionName: name }
    : { maxRetriesPerRequest: null, retryStrategy, connectionName: name };
  if (autoPipeline) opts.enableAutoPipelining = true;
  const redis = new Redis(url, opts);
  // Errors surface on the commands that fail; an unhandled 'error' event would crash the actor.
  redis.on('error', () => {});
  return redis;
}

/** Resolves once the connection is ready, or rejects after timeoutMs. */
export function whenReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis not reachable within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
