// The cache actor owns the chunk store. Next to an http actor (same process) it is asked by
// direct call; on another host it serves "<gateway>.cache" and RemoteChunkCache asks it there.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../proto/config/config.js';
import { ChunkStore } from './chunk-store.js';
import { Heartbeat } from '../../queues/registry.js';
import type { Asker, CallResult, IncomingCall } from '../../queues/ask.js';
import { CallServer } from '../../queues/serve.js';
import { JobMac } from '../../queues/job-mac.js';
import { callRefusals } from '../refusal-log.js';
import { connectRedis, whenReady, type RedisTarget } from '../../queues/redis.js';
import type { ChunkCache } from '../../http/driver-pipeline.js';
import { Errno } from '../../drivers/errno.js';

const EMPTY = new Uint8Array(0);

export function openChunkStore(config: GatewayConfig): Promise<ChunkStore> {
  return ChunkStore.open({ dir: config.cache.dir, maxBytes: config.cache.max_bytes, memoryBytes: config.cache.memory_bytes });
}

async function answer(store: ChunkStore, call: IncomingCall): Promise<CallResult> {
  const [op, key] = call.args ?? [];
  if (!key) return { rc: -Errno.EINVAL, error: 'cache call without a key' };
  switch (op) {
    case 'get': {
      const bytes = await store.get(key);
      return bytes ? { rc: 0, chunk: bytes } : { rc: -Errno.ENOENT };
    }
    case 'put':
      await store.put(key, call.chunk ?? EMPTY);
      return { rc: 0 };
    case 'delete':
      return { rc: (await store.delete(key)) ? 0 : -Errno.ENOENT };
    default:
      return { rc: -Errno.EINVAL, error: `unknown cache operation ${op}` };
  }
}

/** What a cache actor publishes in its registry entry each beat (read by `sgw status`). */
export function cacheUsage(store: ChunkStore): () => Record<string, number> {
  return () => {
    const s = store.stats();
    return { bytes: s.bytes, max_bytes: s.maxBytes, entries: s.entries, memory_bytes: s.memoryBytes, hits: s.hits, misses: s.misses, evictions: s.evictions };
  };
}

/** Runs a stand-alone cache actor serving its queue. */
export async function runCacheActor(config: GatewayConfig, target: RedisTarget, logger: Logger): Promise<{ stop(): Promise<void> }> {
  const store = await openChunkStore(config);
  const redis = connectRedis(target, 'patient', 'sgw-cache-actor');
  await whenReady(redis, 30_000);
  const instance = randomUUID();
  const heartbeat = new Heartbeat(redis, config.gateway.key, { instance, role: 'cache', version: '' }, cacheUsage(store));
  const server = new CallServer({
    redis: target, gateway: config.gateway.key, mode: 'cache', concurrency: 64,
    handler: (call) => answer(store, call),
    mac: JobMac.forGateway(config.gateway.private_key, config.gateway.key),
    onRefused: callRefusals(redis, config.gateway.key, 'cache', logger.child({ actor: 'cache' })),
    onDone: () => { heartbeat.jobs++; },
    onRecycle: () => logger.warn({ actor: 'cache' }, 'the queue worker stopped taking jobs while jobs waited; replaced it'),
  });
  await server.ready();
  heartbeat.start();
  logger.info({ actor: 'cache', dir: config.cache.dir, max_bytes: config.cache.max_bytes }, 'cache actor ready');
  return {
    async stop() {
      await heartbeat.stop();
      await server.close();
      await store.close();
      redis.disconnect();
    },
  };
}

/** A ChunkCache whose store lives in a cache actor on another host. */
export class RemoteChunkCache implements ChunkCache {
  constructor(private readonly asker: Asker, private readonly timeoutMs: number) {}

  private call(op: string, key: string, chunk?: Uint8Array): Promise<CallResult> {
    const call = { request: EMPTY, args: [op, key], ...(chunk ? { chunk: Buffer.from(chunk) } : {}) };
    return this.asker.ask('cache', call, this.timeoutMs);
  }

  /** An unreachable cache is a miss: the driver can still answer. */
  async get(key: string): Promise<Buffer | null> {
    const r = await this.call('get', key).catch(() => null);
    return r?.rc === 0 ? (r.chunk ?? Buffer.alloc(0)) : null;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.call('put', key, bytes).catch(() => undefined);
  }

  async delete(key: string): Promise<boolean> {
    return (await this.call('delete', key)).rc === 0;
  }
}
