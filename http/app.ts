// The data-plane HTTP surface of a gateway as a Koa app. createApp() takes every
// dependency explicitly so tests and benchmarks can build one in-process on port 0.
import { randomBytes } from 'node:crypto';
import Koa, { type Context, type Middleware } from 'koa';
import type { Logger } from 'pino';
import { answerErrors, HttpError, isClientGone } from './errors.js';
import { getChunk } from './get-chunk.js';
import { postControlPlane, type ControlPlaneDeps } from './control-plane.js';
import type { ChunkCache, DriverPipeline } from './driver-pipeline.js';
import type { GatewayConfig } from '../proto/config/config.js';
import type { Namespace } from '../queues/namespace/namespace.js';
import { getAgChunk } from './ag-get.js';
import { getNamespace, NAMESPACE_PREFIX } from './namespace-api.js';
import { isFilesPath, ugFilesApi, ugServesNoChunks } from './ug-api.js';
import { requireAdmin } from './admin-auth.js';
import { hostCheck, namespaceGuard } from './access.js';
import type { GatewayMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import { PostBudget } from './post-budget.js';
import { requestLineWriter } from './request-log.js';

export interface AppDeps {
  config: GatewayConfig;
  cache: ChunkCache;
  pipeline: DriverPipeline;
  firstUse: ControlPlaneDeps['firstUse'];
  release: ControlPlaneDeps['release'];
  logger: Logger;
  namespace: Namespace;
  /** The Bull dashboard (http/dashboard.ts), answered before the data plane. */
  dashboard?: Middleware;
  /** Null when metrics are off (config metrics.enabled: false). */
  metrics: GatewayMetrics | null;
  readiness: Readiness;
  /** Bytes of POST bodies held at once (default: a budget of limits.post_bytes_in_flight of its own). */
  postBudget?: PostBudget;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Request ids shaped like UUIDs: 80 random bits per process, then a counter (a random UUID per
 * request cost ~1 µs of a cache hit's ~45).
 */
function requestIds(): () => string {
  const r = randomBytes(10).toString('hex');
  const prefix = `${r.slice(0, 8)}-${r.slice(8, 12)}-${r.slice(12, 16)}-${r.slice(16, 20)}-`;
  let n = 0;
  return () => prefix + (++n).toString(16).padStart(12, '0');
}

export function createApp(deps: AppDeps): Koa {
  const { config, logger } = deps;
  const app = new Koa();
  app.proxy = false;
  const get = config.gateway.type === 'AG'
    ? getAgChunk({ config, namespace: deps.namespace, cache: deps.cache, pipeline: deps.pipeline })
    : config.gateway.type === 'UG' ? ugServesNoChunks : getChunk({
      volumeId: config.gateway.volume_id, userId: config.gateway.user_id, blockSize: config.gateway.block_size,
      cache: deps.cache, pipeline: deps.pipeline,
    });
  const browse = getNamespace(deps.namespace);
  const mayBrowse = namespaceGuard(config);
  const checkHost = hostCheck(config);
  const post = postControlPlane(deps, deps.postBudget ?? new PostBudget(config.limits.post_bytes_in_flight));
  // A user gateway's application API (every method); other gateways have none.
  const files = config.gateway.type === 'UG' ? ugFilesApi(deps) : null;
  const timeout = config.limits.request_timeout_ms;
  const { metrics, readiness } = deps;
  const adminOnly = requireAdmin(config.admin, 'open');
  const nextRequestId = requestIds();

  // Only faults of sgw or its driver reach here as errors: refusals are answered by answerErrors and
  // logged on the request line with their reason; a client that went away is no fault either.
  app.on('error', (err: Error, ctx?: Context) => {
    if (isClientGone(err)) logger.info({ rid: ctx?.state.requestId, reason: err.message }, 'client went away');
    // A streamed answer (a UG file read) whose later block no gateway could serve: its status line
    // was already sent, so the body falls short; the cause is upstream (a replica cut off, its
    // Redis failing over), not a fault here.
    else if (err instanceof HttpError) logger.warn({ rid: ctx?.state.requestId, status: err.status, reason: err.message }, 'answer cut short after its headers');
    else logger.error({ err, rid: ctx?.state.requestId }, 'unhandled error in request');
  });
  // Its fields below are fixed and never secret: no redaction, and a writer made for them.
  const requestLine = requestLineWriter(logger);

  // Request id, deadline, metrics and one log line per request: one middleware, one clock.
  app.use(async (ctx, next) => {
    const started = performance.now();
    // A caller's id is kept when it is a short token (it rides in job data and every log line).
    const given = ctx.get('X-Request-Id');
    ctx.state.requestId = given && REQUEST_ID.test(given) ? given : nextRequestId();
    ctx.state.deadline = Date.now() + timeout;
    ctx.set('X-Request-Id', ctx.state.requestId as string);
    try {
      await next();
    } finally {
      if (metrics || requestLine) {
        const ms = performance.now() - started;
        const { method, path, status, state } = ctx;
        metrics?.requestDone(method, path, status, ms / 1000, state);
        requestLine?.({
          rid: state.requestId as string, method, path, status, ms: Math.round(ms * 100) / 100,
          cache: state.cache as string | undefined, rc: state.errorCode as number | undefined, reason: state.reason as string | undefined,
        });
      }
    }
  });
  app.use(answerErrors);
  if (checkHost) app.use(checkHost);
  if (deps.dashboard) app.use(deps.dashboard);
  app.use(async (ctx) => {
    if (files && isFilesPath(ctx.path)) return files(ctx);
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      // Never gated by readiness: probes and scrapes must work while the gateway is not ready.
      switch (ctx.path) {
        case '/PING':
          ctx.body = 'PONG\n';
          return;
        case '/health':
          ctx.body = { alive: true, pid: process.pid, uptime_s: Math.round(process.uptime()) };
          return;
        case '/ready':
          return readiness.answer(ctx);
        case '/metrics':
          if (metrics) return adminOnly(ctx, () => metrics.serve(ctx));
      }
      if (ctx.path.includes('/DATA/')) return get(ctx);
      if (ctx.path === NAMESPACE_PREFIX || ctx.path.startsWith(`${NAMESPACE_PREFIX}/`)) return mayBrowse(ctx, () => browse(ctx));
    } else if (ctx.method === 'POST') {
      return post(ctx);
    }
    throw new HttpError(ctx.method === 'GET' ? 404 : 405, `no ${ctx.method} route for ${ctx.path}`);
  });
  return app;
}
