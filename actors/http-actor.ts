// The http actor: the data-plane server of one gateway. Stateless apart from connections, so
// any number may run behind a load balancer; with the cache role on the same host the chunk
// store is opened in-process and asked by direct call.
import { JobMac } from '../queues/job-mac.js';
import { readRefusals } from '../queues/refusals.js';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../proto/config/config.js';
import { cacheUsage, openChunkStore, RemoteChunkCache } from './cache/cache-actor.js';
import { claimAcquisitionGateway, Namespace } from '../queues/namespace/namespace.js';
import { Heartbeat, LiveActors } from '../queues/registry.js';
import { createApp } from '../http/app.js';
import { createDashboard } from '../http/dashboard.js';
import { DriverPipeline, type ChunkCache } from '../http/driver-pipeline.js';
import { Asker } from '../queues/ask.js';
import { oldestWaiting } from '../queues/queue-age.js';
import { NonceStore } from '../queues/nonces.js';
import { connectRedis, whenReady, type RedisTarget } from '../queues/redis.js';
import { keys, modeQueueName, MODES_OF_GATEWAY, NEEDS_DRIVER, type DriverMode } from '../queues/names.js';
import { GatewayMetrics } from '../http/metrics.js';
import { Readiness, REQUEST_KINDS } from '../http/readiness.js';
import { PostBudget } from '../http/post-budget.js';
import { DriverVersionWatch } from '../drivers/version-watch.js';

export interface HttpActorOptions {
  config: GatewayConfig;
  redis: RedisTarget;
  logger: Logger;
  /** Open the chunk store in this process (roles http + cache on one host). */
  withCache: boolean;
  /** Override the configured port (0 = any free port; tests and benchmarks). */
  port?: number;
}

export interface RunningHttpActor {
  url: string;
  port: number;
  server: Server;
  stop(): Promise<void>;
}

export async function runHttpActor(opts: HttpActorOptions): Promise<RunningHttpActor> {
  const { config, logger } = opts;
  const gateway = config.gateway.key;
  const log = logger.child({ actor: 'http' });
  const asker = new Asker(opts.redis, gateway, JobMac.forGateway(config.gateway.private_key, gateway));
  // Small control commands (nonces, live actors) on their own connection, so they never queue
  // behind megabyte chunks on the asker's.
  const redis = connectRedis(opts.redis, 'fail-fast', { name: 'sgw-http-control', autoPipeline: true });
  // Refusals are the supervisor's to log and count; here a refused version is simply not taken.
  const watch = new DriverVersionWatch(redis, opts.redis, gateway, { key: config.gateway.private_key });
  watch.on('refused', (err) => log.debug({ version: err.hash, reason: err.reason }, 'driver version refused'));
  const modes = MODES_OF_GATEWAY[config.gateway.type];
  const readiness = new Readiness({
    redisUp: () => redis.status === 'ready' && asker.redis.status === 'ready',
    modes: () => watch.version?.modes ?? null,
    needsDriver: NEEDS_DRIVER[config.gateway.type],
    kinds: REQUEST_KINDS[config.gateway.type],
    liveActors: (mode) => live.count(`driver:${mode}`),
    recount: () => live.current(),
  });
  const live = new LiveActors(redis, gateway, () => modes.map((m) => `driver:${m}`), () => readiness.update());
  // A lost connection makes the gateway unready at once, not at the next live-actor refresh.
  for (const conn of [redis, asker.redis]) for (const ev of ['ready', 'close', 'end']) conn.on(ev, () => readiness.update());
  const store = opts.withCache ? await openChunkStore(config) : null;
  const cache: ChunkCache = store ?? new RemoteChunkCache(asker, config.limits.call_timeout_ms);
  const noModes: ReadonlySet<DriverMode> = new Set();
  const pipeline = new DriverPipeline({
    asker,
    methods: () => watch.version?.modes ?? noModes,
    liveActors: (mode) => live.count(`driver:${mode}`),
    liveActorsNow: (mode) => live.countFresh(`driver:${mode}`),
    callTimeoutMs: config.limits.call_timeout_ms,
    readiness,
  });
  const postBudget = new PostBudget(config.limits.post_bytes_in_flight);
  const metrics = config.metrics.enabled ? new GatewayMetrics({
    gateway,
    queues: () => [...(watch.version?.modes ?? []), ...(store ? [] : ['cache' as const])]
      .map((mode) => ({ mode, name: modeQueueName(gateway, mode) })),
    jobCounts: (mode) => asker.jobCounts(mode),
    oldestWaiting: (queueName) => oldestWaiting(redis, queueName),
    modes: () => watch.version?.modes ?? noModes,
    liveActors: (mode) => live.count(`driver:${mode}`),
    restarts: () => redis.hgetall(keys.restarts(gateway)),
    refusals: () => readRefusals(redis, gateway),
    refusedReplies: () => asker.refusedReplies,
    ping: async () => {
      const started = performance.now();
      await redis.ping();
      return performance.now() - started;
    },
    cacheStats: () => store?.stats() ?? null,
    chunkTransfers: () => asker.chunkTransfers,
    chunkHostMisses: () => asker.chunkHostMisses,
    chunkKeyLosses: () => asker.chunkKeyLosses,
    postBytesInFlight: () => postBudget.inFlight,
  }) : null;
  if (metrics) asker.observe = metrics.observeCall;
  // Namespace changes and nonces wait for replicas (WAIT) on a connection of their own, holding up
  // no read (WAIT blocks what queues behind it on its connection).
  const replicated = connectRedis(opts.redis, 'fail-fast', 'sgw-http-replicated');
  const nonces = new NonceStore(replicated, gateway, config.limits.replay_window_s * 1000, { replication: config.replication });
  const namespace = new Namespace(redis, config.gateway.volume_id, { replication: config.replication, writer: replicated });
  const dashboard = createDashboard({ redis: opts.redis, admin: config.admin });
  const app = createApp({
    config, cache, pipeline, logger: log, namespace, dashboard: dashboard.middleware, metrics, readiness, postBudget,
    firstUse: (sender, nonce) => nonces.firstUse(sender, nonce),
    release: (sender, nonce) => nonces.release(sender, nonce),
  });

  // Fail-fast connections refuse commands until connected: wait, then learn the driver's methods
  // and the live actors before the first request.
  await Promise.all([redis, asker.redis, replicated].map((r) => whenReady(r, 30_000)));
  await claimAcquisitionGateway(redis, config);
  await Promise.all([watch.check(), live.current()]);
  readiness.update();
  // Slow or stuck clients must not hold a connection past these either: the headers must come
  // within header_timeout_ms, the whole request within request_timeout_ms (a stalled POST body is
  // cut sooner, by body_idle_timeout_ms). Node checks them every connectionsCheckingInterval.
  const server = createServer({
    requestTimeout: config.limits.request_timeout_ms,
    headersTimeout: Math.min(config.limits.header_timeout_ms, config.limits.request_timeout_ms),
    connectionsCheckingInterval: 1000,
    keepAliveTimeout: config.limits.keep_alive_timeout_ms,
  }, app.callback());
  server.listen(opts.port ?? config.gateway.port, config.gateway.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const instance = randomUUID();
  const beats = [new Heartbeat(redis, gateway, { instance, role: 'http', version: '' })];
  // Its own registry entry: one hash per instance, and the cache role publishes the store's usage.
  if (store) beats.push(new Heartbeat(redis, gateway, { instance: randomUUID(), role: 'cache', version: '' }, cacheUsage(store)));
  beats.forEach((b) => b.start());
  const url = `http://${config.gateway.host}:${port}`;
  log.info({ url, gateway, cache: store ? config.cache.dir : 'remote' }, 'http actor listening');

  let stopping: Promise<void> | null = null;
  // While stopping, every answer closes its connection: a client that keeps its keep-alive
  // connection busy must not hold the actor (and its supervisor) up until the drain deadline.
  server.prependListener('request', (_req, res) => {
    if (stopping) res.setHeader('Connection', 'close');
  });
  return {
    url, port, server,
    stop() {
      stopping ??= (async () => {
        // Stop accepting, let in-flight requests finish (they are bounded by their deadline).
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        server.closeIdleConnections();
        await Promise.race([closed, new Promise((r) => setTimeout(r, config.limits.request_timeout_ms).unref())]);
        clearInterval(sweep);
        server.closeAllConnections();
        await Promise.all([...beats.map((b) => b.stop()), dashboard.close()]);
        live.close();
        watch.close();
        await asker.close();
        redis.disconnect();
        replicated.disconnect();
        await store?.close();
      })();
      return stopping;
    },
  };
}
