// Prometheus metrics of one http actor, in a Registry of its own (prom-client's global one would
// mix actors and tests that share a process). The hot path only bumps in-memory counters through
// label children looked up once; whatever costs a Redis round trip is read on scrape, and queue
// counts are cached for a second so that a burst of scrapes stays cheap.
import type { Context } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChunkStoreStats } from './driver-pipeline.js';
import type { AuthReason } from './errors.js';
import { RequestCounter, RequestHistogram } from './request-metrics.js';
import type { RefusalCounts } from '../queues/refusals.js';

/** What the metrics read on scrape; the http actor wires these to its connections. */
export interface MetricsSources {
  /** The gateway's key ("rg.20"), a label of its gateway-wide series. */
  gateway: string;
  /** Queues to count jobs of, by their mode ("read", ..., "cache"), and their full names. */
  queues(): { mode: string; name: string }[];
  jobCounts(mode: string): Promise<Record<string, number>>;
  /** When the oldest job waiting in a queue (by its full name) was added (epoch ms), null when none waits. */
  oldestWaiting(queueName: string): Promise<number | null>;
  /** Driver modes the current driver version needs, and live actors of each. */
  modes(): Iterable<string>;
  liveActors(mode: string): number;
  /** Actor restarts by role, as counted in Redis by the supervisors. */
  restarts(): Promise<Record<string, string>>;
  /** Bundles and calls actors refused unauthenticated (queues/refusals.ts), as counted in Redis. */
  refusals(): Promise<RefusalCounts>;
  /** Replies this http actor dropped for a bad MAC, by mode. */
  refusedReplies(): Record<string, number>;
  /** One PING; resolves with its round trip in ms, rejects when Redis does not answer. */
  ping(): Promise<number>;
  /** The chunk store's counters when it lives in this process; null when the cache is remote. */
  cacheStats(): ChunkStoreStats | null;
  /** Chunks too large to ride in a job, by what carried them to the serving actor. */
  chunkTransfers(): { host: number; redis: number };
  /** Host files a serving actor on another host could not read (sent again through Redis). */
  chunkHostMisses(): number;
  /** Chunk keys a serving actor found gone (lost in a failover; put again and sent again). */
  chunkKeyLosses(): number;
  /** Bytes of POST bodies held now (limits.post_bytes_in_flight). */
  postBytesInFlight(): number;
}

const JOB_STATES = ['waiting', 'active', 'failed', 'delayed'] as const;
/** What an autoscaler looks at: calls not yet taken, and calls being served. */
const DEPTH_STATES = ['waiting', 'active'] as const;

interface QueueStats {
  mode: string;
  name: string;
  counts: Record<string, number>;
  /** Epoch ms the oldest waiting job was added, null when none waits (or Redis did not say). */
  oldest: number | null;
}
const JOB_COUNTS_TTL_MS = 1000;
// Driver calls and HTTP requests span ~0.1 ms (cache hits) to the 30 s request deadline.
const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const PING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

// Prefixes of the operator and application surfaces, each one label value.
const PREFIX_ROUTES = ['/admin/queues', '/FILES', '/NAMESPACE'];

/** The route template of a request: a small fixed set, never a raw path. */
export function routeOf(method: string, path: string): string {
  if (path.includes('/DATA/')) return '/DATA/*';
  switch (path) {
    case '/': return method === 'POST' ? '/' : 'other';
    case '/PING': case '/metrics': case '/health': case '/ready': return path;
  }
  for (const p of PREFIX_ROUTES) if (path === p || path.startsWith(`${p}/`)) return `${p}/*`;
  return 'other';
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

/** What the handlers left in ctx.state that the metrics count. */
export interface RequestState {
  authRejection?: AuthReason;
  cache?: unknown;
}

interface RequestSeries {
  count: { inc(): void };
  duration: { observe(v: number): void };
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: RequestCounter;
  private readonly duration: RequestHistogram;
  private readonly callRoundTrip: Histogram<'mode'>;
  private readonly callServed: Histogram<'mode'>;
  private readonly authRejections: Counter<'reason'>;
  private readonly cacheHits: Counter;
  private readonly cacheMisses: Counter;
  /** Series by route, method and status, made on first use. */
  private readonly series = new Map<string, Map<string, Map<number, RequestSeries>>>();
  /** The chunk store lives in this process and counts hits and misses itself. */
  private readonly localCache: boolean;
  private jobCounts: { at: number; stats: Promise<QueueStats[]> } | null = null;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new RequestCounter('sgw_http_requests_total', 'HTTP requests answered, by route template, method and status');
    this.duration = new RequestHistogram('sgw_http_request_duration_seconds', 'Time to answer an HTTP request', SECONDS_BUCKETS);
    // prom-client's Registry takes any metric with a name, help, type and get().
    for (const m of [this.requests, this.duration]) this.registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
    this.callRoundTrip = new Histogram({ name: 'sgw_driver_call_duration_seconds', help: 'Driver call round trip as the http actor saw it (queue, actor, reply), by mode', labelNames: ['mode'], buckets: SECONDS_BUCKETS, registers });
    this.callServed = new Histogram({ name: 'sgw_driver_call_processing_seconds', help: 'Time the serving actor spent on a call (chunk fetch and driver method), by mode', labelNames: ['mode'], buckets: SECONDS_BUCKETS, registers });
    this.authRejections = new Counter({ name: 'sgw_auth_rejections_total', help: 'Requests refused by an authentication or authorization check, by reason', labelNames: ['reason'], registers });
    const self = this;
    const fromStore = (read: (s: ChunkStoreStats) => number) => function (this: Counter | Gauge) {
      const s = self.sources.cacheStats();
      if (!s) return;
      this.reset();
      this.inc(read(s));
    };
    // In-process store: its own counters (they include every get, whoever asked). Remote cache:
    // what this http actor saw, counted per request below.
    const local = sources.cacheStats() !== null;
    this.localCache = local;
    this.cacheHits = new Counter({ name: 'sgw_cache_hits_total', help: 'Chunk cache hits', registers, ...(local ? { collect: fromStore((s) => s.hits) } : {}) });
    this.cacheMisses = new Counter({ name: 'sgw_cache_misses_total', help: 'Chunk cache misses', registers, ...(local ? { collect: fromStore((s) => s.misses) } : {}) });
    if (local) {
      new Counter({ name: 'sgw_cache_evictions_total', help: 'Chunks evicted from the cache to stay within its byte budget', registers, collect: fromStore((s) => s.evictions) });
      new Gauge({ name: 'sgw_cache_bytes', help: 'Bytes of chunks in the cache on disk', registers, collect() { const s = self.sources.cacheStats(); if (s) this.set(s.bytes); } });
      new Gauge({ name: 'sgw_cache_max_bytes', help: 'Byte budget of the cache', registers, collect() { const s = self.sources.cacheStats(); if (s) this.set(s.maxBytes); } });
      new Gauge({ name: 'sgw_cache_memory_bytes', help: 'Bytes of chunks held in the in-memory tier', registers, collect() { const s = self.sources.cacheStats(); if (s) this.set(s.memoryBytes); } });
      new Gauge({ name: 'sgw_cache_entries', help: 'Chunks in the cache', registers, collect() { const s = self.sources.cacheStats(); if (s) this.set(s.entries); } });
    }
    new Gauge({
      name: 'sgw_post_bytes_in_flight', help: 'Bytes of POST bodies this http actor holds (or has room reserved for) now; limits.post_bytes_in_flight bounds it', registers,
      collect() { this.set(self.sources.postBytesInFlight()); },
    });
    new Gauge({
      name: 'sgw_queue_jobs', help: 'Jobs in a driver-mode queue by state (read on scrape, cached 1 s)', labelNames: ['queue', 'state'], registers,
      async collect() {
        this.reset();
        for (const q of await self.queueStats()) for (const s of JOB_STATES) this.set({ queue: q.name, state: s }, q.counts[s] ?? 0);
      },
    });
    const gateway = sources.gateway;
    new Gauge({
      name: 'sgw_queue_depth', help: 'Jobs (each of up to 16 driver calls) of a mode waiting to be taken or being served, gateway-wide (read on scrape, cached 1 s)', labelNames: ['gateway', 'mode', 'state'], registers,
      async collect() {
        this.reset();
        for (const q of await self.queueStats()) for (const state of DEPTH_STATES) this.set({ gateway, mode: q.mode, state }, q.counts[state] ?? 0);
      },
    });
    new Gauge({
      name: 'sgw_queue_oldest_wait_seconds', help: 'How long the oldest job still waiting in a mode\'s queue has waited, 0 when none waits (read on scrape, cached 1 s)', labelNames: ['gateway', 'mode'], registers,
      async collect() {
        this.reset();
        const now = Date.now();
        for (const q of await self.queueStats()) this.set({ gateway, mode: q.mode }, q.oldest === null ? 0 : Math.max(0, now - q.oldest) / 1000);
      },
    });
    new Gauge({
      name: 'sgw_driver_actors_alive', help: 'Live driver actors of the gateway, on any host, by mode', labelNames: ['mode'], registers,
      collect() {
        this.reset();
        for (const m of self.sources.modes()) this.set({ mode: m }, self.sources.liveActors(m));
      },
    });
    new Counter({
      name: 'sgw_actor_restarts_total', help: 'Actors restarted by a supervisor of this gateway (any host), by role', labelNames: ['role'], registers,
      async collect() {
        const byRole = await self.sources.restarts().catch(() => null);
        if (!byRole) return; // Redis away: keep the last values rather than report a drop
        this.reset();
        for (const [role, n] of Object.entries(byRole)) this.inc({ role }, Number(n));
      },
    });
    // Both read the refusal counts the actors keep in Redis (queues/refusals.ts).
    const refusalCounter = <L extends string>(name: string, help: string, labelNames: L[], samples: (c: RefusalCounts) => [Record<L, string>, number][]) => new Counter({
      name, help, labelNames, registers,
      async collect() {
        const counts = await self.sources.refusals().catch(() => null);
        if (!counts) return; // Redis away: keep the last values rather than report a drop
        this.reset();
        for (const [labels, n] of samples(counts)) this.inc(labels as never, n);
      },
    });
    refusalCounter('sgw_driver_bundle_rejected_total', 'Driver bundle versions refused by a supervisor or actor of this gateway (any host): signature, gateway, content or rollback, by reason',
      ['gateway', 'reason'], (c) => c.bundles.map((r) => [{ gateway: sources.gateway, reason: r.reason }, r.n]));
    refusalCounter('sgw_driver_job_refused_total', 'Calls from Redis a serving actor refused unrun (no or bad MAC, expired deadline...), by mode and reason',
      ['mode', 'reason'], (c) => c.calls.map((r) => [{ mode: r.mode, reason: r.reason }, r.n]));
    new Counter({
      name: 'sgw_driver_reply_refused_total', help: 'Replies this http actor dropped because their MAC did not check out (pushed by a Redis client), by mode', labelNames: ['mode'], registers,
      collect() {
        this.reset();
        for (const [mode, n] of Object.entries(self.sources.refusedReplies())) this.inc({ mode }, n);
      },
    });
    new Counter({
      name: 'sgw_chunk_transfers_total', help: 'Chunks too large for a job delivered to a serving actor, by what carried them: a host file (same host) or Redis; counted once per answered call', labelNames: ['via'], registers,
      collect() {
        this.reset();
        for (const [via, n] of Object.entries(self.sources.chunkTransfers())) this.inc({ via }, n);
      },
    });
    new Counter({
      name: 'sgw_chunk_host_misses_total', help: 'Chunks sent as a host file that a serving actor on another host could not read, then sent again through Redis', registers,
      collect() {
        this.reset();
        this.inc(self.sources.chunkHostMisses());
      },
    });
    new Counter({
      name: 'sgw_chunk_key_losses_total', help: 'Chunks sent as a Redis key that a serving actor found gone (lost with a failed master), then put and sent again', registers,
      collect() {
        this.reset();
        this.inc(self.sources.chunkKeyLosses());
      },
    });
    const pingSeconds = new Histogram({ name: 'sgw_redis_ping_duration_seconds', help: 'Round trip of a Redis PING, measured on each scrape', buckets: PING_BUCKETS, registers });
    new Gauge({
      name: 'sgw_redis_up', help: '1 when Redis answered the scrape\'s PING', registers,
      async collect() {
        try {
          pingSeconds.observe((await self.sources.ping()) / 1000);
          this.set(1);
        } catch {
          this.set(0);
        }
      },
    });
  }

  /** Job counts and oldest waiting job of each queue: two Redis calls per mode, at most once a second. */
  private queueStats(): Promise<QueueStats[]> {
    const now = Date.now();
    if (!this.jobCounts || now - this.jobCounts.at > JOB_COUNTS_TTL_MS) {
      const stats = Promise.all(this.sources.queues().map(async (q): Promise<QueueStats> => {
        const [counts, oldest] = await Promise.all([
          this.sources.jobCounts(q.mode).catch(() => ({})),
          this.sources.oldestWaiting(q.name).catch(() => null),
        ]);
        return { ...q, counts, oldest };
      }));
      this.jobCounts = { at: now, stats };
    }
    return this.jobCounts.stats;
  }

  /**
   * Counts and times one answered request by route template (called by the request-line
   * middleware of http/app.ts, which reads the request's fields once for both).
   */
  requestDone(method: string, path: string, status: number, seconds: number, state: RequestState): void {
    const m = METHODS.has(method) ? method : 'other';
    const route = routeOf(m, path);
    let byStatus = this.series.get(route)?.get(m);
    if (!byStatus) {
      byStatus = new Map();
      let byMethod = this.series.get(route);
      if (!byMethod) this.series.set(route, (byMethod = new Map()));
      byMethod.set(m, byStatus);
    }
    let s = byStatus.get(status);
    if (!s) {
      s = { count: this.requests.child({ route, method: m, status: String(status) }), duration: this.duration.child({ route, method: m }) };
      byStatus.set(status, s);
    }
    s.count.inc();
    s.duration.observe(seconds);
    if (state.authRejection) this.authRejections.inc({ reason: state.authRejection });
    if (state.cache === 'hit') this.cacheSeen(true);
    else if (state.cache === 'miss') this.cacheSeen(false);
  }

  private cacheSeen(hit: boolean): void {
    if (this.localCache) return;
    (hit ? this.cacheHits : this.cacheMisses).inc();
  }

  /** For Asker.observe: round trip and processing time of one driver call. */
  readonly observeCall = (mode: string, roundTripMs: number, servedMs: number | undefined): void => {
    this.callRoundTrip.observe({ mode }, roundTripMs / 1000);
    if (servedMs !== undefined) this.callServed.observe({ mode }, servedMs / 1000);
  };

  /** Answers a scrape. */
  async serve(ctx: Context): Promise<void> {
    ctx.body = await this.registry.metrics();
    ctx.type = this.registry.contentType;
  }
}
