// `sgw start` and `sgw actor`: what runs in each process.
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { loadConfig, type GatewayConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { prepareDemo } from './demo.js';
import { startRedisServer, type RedisServer } from './embedded-redis.js';
import { parseRoles, Supervisor } from './supervisor.js';
import { runHttpActor } from './http-actor.js';
import { runCacheActor } from './cache-actor.js';
import { runDriverActor } from './driver-actor.js';
import { buildBundle, publishBundle } from '../drivers/bundle.js';
import { unsealSecrets } from '../drivers/secrets.js';
import { connectRedis, whenReady } from '../queues/redis.js';
import { DRIVER_MODES, type DriverMode } from '../queues/names.js';

/** Builds the driver folder of the config and publishes it if its content changed. */
export async function publishDriver(config: GatewayConfig, redisUrl: string, folder = config.driver): Promise<{ hash: string; changed: boolean; methods: string[] }> {
  if (!folder) throw new Error('no driver folder: set "driver" in the config file or pass --dir');
  const bundle = await buildBundle(folder);
  // Fail here, with a clear message, rather than in every driver actor on every host.
  if (bundle.secrets) JSON.parse(unsealSecrets(bundle.secrets, config.gateway.private_key).toString());
  const redis = connectRedis(redisUrl, 'patient', 'sgw-publish');
  try {
    await whenReady(redis);
    const r = await publishBundle(redis, config.gateway.key, bundle);
    return { ...r, methods: bundle.meta.methods };
  } finally {
    redis.disconnect();
  }
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** Fails at once with a clear message instead of an http actor crash-looping on EADDRINUSE. */
function assertPortFree(host: string, port: number, configFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'EADDRINUSE'
      ? `${host}:${port} is already in use: set gateway.port in ${configFile} or SGW_PORT`
      : `cannot listen on ${host}:${port}: ${err.message}`)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

export interface StartOptions {
  config?: string;
  roles?: string;
}

export async function startGateway(opts: StartOptions): Promise<void> {
  const demo = opts.config ? null : prepareDemo();
  const configFile = resolve(opts.config ?? demo!.configFile);
  const config = loadConfig(configFile);
  const logger = createLogger(config.log.level, 'sgw');
  const roles = parseRoles(opts.roles, config);
  if (roles.http) await assertPortFree(config.gateway.host, config.gateway.port, configFile);
  let embedded: RedisServer | null = null;
  let redisUrl = config.redis;
  if (!redisUrl) {
    embedded = await startRedisServer({ quiet: true });
    redisUrl = embedded.url;
  }
  if (config.driver) {
    const p = await publishDriver(config, redisUrl);
    logger.info({ version: p.hash, changed: p.changed, methods: p.methods }, 'driver published');
  }
  const supervisor = new Supervisor({ config, configFile, redisUrl, roles, logger });
  onSignals(async () => {
    logger.info('stopping: draining actors');
    await supervisor.stop();
    await embedded?.stop();
  });
  await supervisor.start();
  const lines = [
    `sgw: ${config.gateway.type} gateway ${config.gateway.id} (volume ${config.gateway.volume_id})`,
    roles.http ? `  serving      http://${config.gateway.host}:${config.gateway.port}/  (try GET /PING)` : null,
    `  redis        ${redisUrl}${embedded ? '  (private redis-server, stopped with sgw)' : ''}`,
    `  config       ${configFile}`,
    roles.http || roles.cache ? `  cache        ${config.cache.dir}` : null,
    demo ? `  storage      ${demo.storageDir}  (built-in disk driver)` : null,
    `  stop with    Ctrl-C or kill -TERM ${process.pid}`,
  ].filter(Boolean);
  process.stderr.write(`${lines.join('\n')}\n`);
}

export interface ActorOptions {
  config: string;
  version?: string;
  withCache?: boolean;
}

/** One actor in this process (forked by the supervisor, or run by an external manager). */
export async function runActor(role: string, opts: ActorOptions): Promise<void> {
  const config = loadConfig(resolve(opts.config));
  const logger: Logger = createLogger(config.log.level, 'sgw');
  const redisUrl = config.redis;
  if (!redisUrl) throw new Error('an actor needs a Redis URL: set "redis" in the config file or SGW_REDIS_URL');
  let stop: () => Promise<void>;
  if (role === 'http') {
    const h = await runHttpActor({ config, redisUrl, logger, withCache: opts.withCache ?? false });
    stop = h.stop;
  } else if (role === 'cache') {
    stop = (await runCacheActor(config, redisUrl, logger)).stop;
  } else if (role.startsWith('driver:') && DRIVER_MODES.includes(role.slice(7) as DriverMode)) {
    const d = await runDriverActor({ config, redisUrl, logger, mode: role.slice(7) as DriverMode, ...(opts.version ? { version: opts.version } : {}) });
    stop = () => d.stop(0);
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
