// `sgw actor <role>`: one actor in this process, forked by the supervisor or run by a service
// manager. Each process loads only the code of its own role (dynamic imports): a driver actor
// carries no Koa, and every idle actor is that much smaller.
import { resolve } from 'node:path';
import { loadConfig, type GatewayConfig } from '../proto/config/config.js';
import { createLogger, type Logger } from './logger.js';
import { lockFolders } from './supervisor/folder-lock.js';
import { tuneHeapGrowth } from './supervisor/heap.js';
import { releaseMemoryWhenIdle } from './idle-memory.js';
import { onSignals } from './signals.js';
import { EXIT } from './exit-codes.js';
import { connectRedis, type RedisTarget } from '../queues/redis.js';
import { DRIVER_MODES, type DriverMode } from '../queues/names.js';

export interface ActorOptions {
  config: string;
  version?: string;
  withCache?: boolean;
}

async function recycleOnNewVersion(config: GatewayConfig, target: RedisTarget, running: string, runningSeq: number, recycle: () => Promise<void>, logger: Logger): Promise<void> {
  const { DriverVersionWatch } = await import('../drivers/version-watch.js');
  const redis = connectRedis(target, 'patient', 'sgw-actor-version');
  const { bundleRefused } = await import('./refusal-log.js');
  const watch = new DriverVersionWatch(redis, target, config.gateway.key, { key: config.gateway.private_key, floor: runningSeq });
  watch.on('refused', (err) => bundleRefused(redis, config.gateway.key, err, logger, 'keeping the running version'));
  watch.on('change', (v) => {
    if (v.hash === running) return;
    logger.info({ running, published: v.hash }, 'a new driver version was published: exiting so the service manager restarts this actor with it');
    watch.close();
    redis.disconnect();
    void recycle();
  });
}

/** One actor in this process (forked by the supervisor, or run by an external manager). */
export async function runActor(role: string, opts: ActorOptions): Promise<void> {
  const config = loadConfig(resolve(opts.config));
  const logger: Logger = createLogger(config.log.level, 'sgw');
  tuneHeapGrowth(config.actors.heap_growth_percent);
  releaseMemoryWhenIdle();
  const target = config.redis;
  if (!target) throw new Error('an actor needs a Redis: set "redis" in the config file or SGW_REDIS_URL');
  // The owner of the chunk store holds its folder: under sgw start the supervisor does, run by a
  // service manager the actor itself.
  if (!process.send && (role === 'cache' || (role === 'http' && opts.withCache))) {
    lockFolders([config.cache.dir], { command: `sgw actor ${role}`, config: config.file });
  }
  let stop: () => Promise<void>;
  if (role === 'http') {
    const { runHttpActor } = await import('./http-actor.js');
    const h = await runHttpActor({ config, redis: target, logger, withCache: opts.withCache ?? false });
    stop = h.stop;
  } else if (role === 'cache') {
    const { runCacheActor } = await import('./cache/cache-actor.js');
    stop = (await runCacheActor(config, target, logger)).stop;
  } else if (role.startsWith('driver:') && role.slice(7).split('+').every((m) => DRIVER_MODES.includes(m as DriverMode))) {
    const { runDriverActor } = await import('./driver-actor.js');
    const modes = [...new Set(role.slice(7).split('+'))] as DriverMode[];
    const d = await runDriverActor({ config, redis: target, logger, modes, ...(opts.version ? { version: opts.version } : {}) });
    stop = () => d.stop(0);
    // Run by a service manager (no supervisor to swap versions): follow publishes by exiting for a
    // restart, which loads the new version.
    if (!process.send && !opts.version) await recycleOnNewVersion(config, target, d.version, d.seq, () => d.stop(EXIT.RECYCLE), logger);
  } else if (role === 'crawl') {
    const { runCrawlActor } = await import('./crawl/crawl-actor.js');
    const c = await runCrawlActor({ config, redis: target, logger, ...(opts.version ? { version: opts.version } : {}) });
    stop = () => c.stop(0);
    if (!process.send && !opts.version) await recycleOnNewVersion(config, target, c.version, c.seq, () => c.stop(EXIT.RECYCLE), logger);
  } else {
    throw new Error(`unknown actor role "${role}"`);
  }
  onSignals(stop);
  // The supervisor's watchdog expects a beat; a blocked event loop stops them.
  if (process.send) {
    process.send({ type: 'ready' });
    setInterval(() => process.send?.({ type: 'beat' }), 500).unref();
    process.on('disconnect', () => void stop().then(() => process.exit(0)));
  }
}
