// `sgw start` and `sgw actor`: what runs in each process.
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { loadConfig, type GatewayConfig } from '../../proto/config/config.js';
import { createLogger, type Logger } from '../logger.js';
import { prepareDemo } from './demo.js';
import { lockFolders } from './folder-lock.js';
import { StateRedis, stateRedisPaths } from './state-redis.js';
import { parseRoles, Supervisor, type Roles } from './supervisor.js';
import { ProgressLine, withProgress } from '../cli/progress.js';
import { runCrawlActor } from '../crawl/crawl-actor.js';
import { tuneHeapGrowth } from './heap.js';
import { claimAcquisitionGateway } from '../../queues/namespace/namespace.js';
import { runHttpActor } from '../http-actor.js';
import { runCacheActor } from '../cache/cache-actor.js';
import { EXIT, runDriverActor } from '../driver-actor.js';
import { DriverVersionWatch } from '../../drivers/version-watch.js';
import { buildBundle, publishBundle } from '../../drivers/bundle.js';
import { unsealSecrets } from '../../drivers/secrets.js';
import { connectRedis, describeRedis, redisAt, whenReady, type RedisTarget } from '../../queues/redis.js';
import { DRIVER_MODES, type DriverMode } from '../../queues/names.js';

/** Builds the driver folder of the config and publishes it if its content changed. */
export async function publishDriver(
  config: GatewayConfig, target: RedisTarget, folder = config.driver, onStep: (step: string) => void = () => {},
): Promise<{ hash: string; changed: boolean; methods: string[] }> {
  if (!folder) throw new Error('no driver folder: set "driver" in the config file or pass --dir');
  onStep('bundling the driver');
  const bundle = await buildBundle(folder);
  // Fail here, with a clear message, rather than in every driver actor on every host.
  if (bundle.secrets) JSON.parse(unsealSecrets(bundle.secrets, config.gateway.private_key).toString());
  const redis = connectRedis(target, 'patient', 'sgw-publish');
  try {
    onStep('waiting for Redis');
    await whenReady(redis);
    onStep('uploading the driver bundle');
    const r = await publishBundle(redis, config.gateway.key, bundle);
    return { ...r, methods: bundle.meta.methods };
  } finally {
    redis.disconnect();
  }
}

/** Stops gracefully on SIGTERM/SIGINT, once, then exits. */
export function onSignals(stop: () => Promise<void>): void {
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

/** `sgw start` prints its summary once the actors are ready, or after this long anyway. */
const ACTORS_READY_WAIT_MS = 30_000;

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
  if (config.actors.activation === 'none') return prepareExternalActivation(config, configFile, roles, logger);
  // One gateway per folder, refused before anything starts; the kernel lets go when we exit.
  const locks = lockFolders([config.state.dir, ...(roles.cache ? [config.cache.dir] : [])], { command: 'sgw start', config: configFile });
  if (roles.http) await assertPortFree(config.gateway.host, config.gateway.port, configFile);
  const progress = new ProgressLine('starting');
  let embedded: StateRedis | null = null;
  let supervisor: Supervisor | null = null;
  onSignals(async () => {
    progress.done();
    logger.info('stopping: draining actors');
    await supervisor?.stop();
    await embedded?.stop();
    locks.forEach((l) => l.release());
  });
  let target = config.redis;
  if (!target) {
    progress.update('starting the private redis-server');
    embedded = await StateRedis.start(config, logger);
    target = redisAt(embedded.url);
  }
  if (config.gateway.type === 'AG') {
    // Refuse a second AG for the volume here, with the reason, rather than in crash-looping actors.
    const redis = connectRedis(target, 'patient', 'sgw-start');
    try {
      await whenReady(redis, 30_000);
      await claimAcquisitionGateway(redis, config);
    } finally {
      redis.disconnect();
    }
  }
  if (config.driver) {
    const p = await publishDriver(config, target, config.driver, (step) => progress.update(step));
    logger.info({ version: p.hash, changed: p.changed, methods: p.methods }, 'driver published');
  }
  progress.update('waiting for Redis and the driver version');
  supervisor = new Supervisor({ config, configFile, redis: target, ...(embedded ? { embeddedUrl: embedded.url } : {}), roles, logger });
  await supervisor.start();
  await supervisor.settled(ACTORS_READY_WAIT_MS, (ready, total) => progress.update('waiting for the actors', `${ready}/${total} ready`));
  progress.done();
  const lines = [
    `sgw: ${config.gateway.type} gateway ${config.gateway.id} (volume ${config.gateway.volume_id})`,
    roles.http ? `  serving      http://${config.gateway.host}:${config.gateway.port}/  (try GET /PING)` : null,
    `  redis        ${describeRedis(target)}${embedded ? `  (private redis-server, data in ${stateRedisPaths(config).dir}, stopped with sgw)` : ''}`,
    `  config       ${configFile}`,
    roles.http || roles.cache ? `  cache        ${config.cache.dir}` : null,
    demo ? `  storage      ${demo.storageDir}  (built-in disk driver)` : null,
    `  stop with    Ctrl-C or kill -TERM ${process.pid}`,
  ].filter(Boolean);
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** The actor commands of these roles, as a service manager would run them. */
export function actorCommands(roles: Roles, configFile: string): string[] {
  const list = [
    ...(roles.http ? [roles.cache ? 'http --with-cache' : 'http'] : roles.cache ? ['cache'] : []),
    ...[...roles.drivers].map((m) => `driver:${m}`),
    ...(roles.crawl ? ['crawl'] : []),
  ];
  return list.map((r) => `sgw actor ${r} --config ${configFile}`);
}

/**
 * actors.activation "none": another manager (systemd, ...) runs every actor, so this only does what
 * is shared (publish the driver) and says what to run. The private redis-server is refused: external
 * actors could not find it, and it would die with this command.
 */
async function prepareExternalActivation(config: GatewayConfig, configFile: string, roles: Roles, logger: Logger): Promise<void> {
  if (!config.redis) {
    throw new Error(`actors.activation is "none" in ${configFile}: set "redis" (or SGW_REDIS_URL) to the shared Redis the actors connect to; the private redis-server is only for activation "fork"`);
  }
  if (config.driver) {
    const target = config.redis;
    const p = await withProgress('publishing the driver', (line) => publishDriver(config, target, config.driver, (step) => line.update(step)));
    logger.info({ version: p.hash, changed: p.changed, methods: p.methods }, 'driver published');
  }
  process.stderr.write([
    `sgw: ${config.gateway.type} gateway ${config.gateway.id}: actors.activation is "none", so no actor is started here.`,
    '  Your service manager runs each actor of this host, e.g.:',
    ...actorCommands(roles, configFile).map((c) => `    ${c}`),
    '',
  ].join('\n'));
}

export interface ActorOptions {
  config: string;
  version?: string;
  withCache?: boolean;
}

function recycleOnNewVersion(config: GatewayConfig, target: RedisTarget, running: string, recycle: () => Promise<void>, logger: Logger): void {
  const redis = connectRedis(target, 'patient', 'sgw-actor-version');
  const watch = new DriverVersionWatch(redis, target, config.gateway.key);
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
  const target = config.redis;
  if (!target) throw new Error('an actor needs a Redis: set "redis" in the config file or SGW_REDIS_URL');
  // The owner of the chunk store holds its folder: under sgw start the supervisor does, run by a
  // service manager the actor itself.
  if (!process.send && (role === 'cache' || (role === 'http' && opts.withCache))) {
    lockFolders([config.cache.dir], { command: `sgw actor ${role}`, config: config.file });
  }
  let stop: () => Promise<void>;
  if (role === 'http') {
    const h = await runHttpActor({ config, redis: target, logger, withCache: opts.withCache ?? false });
    stop = h.stop;
  } else if (role === 'cache') {
    stop = (await runCacheActor(config, target, logger)).stop;
  } else if (role.startsWith('driver:') && DRIVER_MODES.includes(role.slice(7) as DriverMode)) {
    const d = await runDriverActor({ config, redis: target, logger, mode: role.slice(7) as DriverMode, ...(opts.version ? { version: opts.version } : {}) });
    stop = () => d.stop(0);
    // Run by a service manager (no supervisor to swap versions): follow publishes by exiting for a
    // restart, which loads the new version.
    if (!process.send && !opts.version) recycleOnNewVersion(config, target, d.version, () => d.stop(EXIT.RECYCLE), logger);
  } else if (role === 'crawl') {
    const c = await runCrawlActor({ config, redis: target, logger, ...(opts.version ? { version: opts.version } : {}) });
    stop = () => c.stop(0);
    if (!process.send && !opts.version) recycleOnNewVersion(config, target, c.version, () => c.stop(EXIT.RECYCLE), logger);
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
