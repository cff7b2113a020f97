// Which kinds of data-plane request this gateway can serve now: Redis reachable, a driver version
// published (unless the gateway type serves without one) and a live driver actor for every mode the
// request uses that the version implements (a GET needs read and serialize, a PUTCHUNKS deserialize
// and write, a RENAME_HINT rename and then write for the manifest, ...). Operators scale and lose modes separately: a gateway without write actors still
// serves GETs. Kept in memory, recomputed when the live-actor view refreshes or a Redis connection
// changes state, so a request reads a few booleans.
import type { Context } from 'koa';
import type { DriverMode, GatewayType } from '../queues/names.js';
import { RETRY_AFTER_S, unavailable, type HttpError } from './errors.js';

/** The kinds of request each gateway type serves, and the driver modes each uses (when the driver has them). */
export const REQUEST_KINDS: Record<GatewayType, Record<string, readonly DriverMode[]>> = {
  RG: { read: ['read', 'serialize'], write: ['deserialize', 'write'], delete: ['delete'], rename: ['rename', 'deserialize', 'write'] },
  AG: { read: ['read', 'serialize'], refresh: ['refresh'] },
  UG: { read: ['cdn_url', 'deserialize'], write: ['serialize'] },
};

export interface ReadinessSources {
  /** Redis connections this actor needs are up (ioredis status 'ready'). */
  redisUp(): boolean;
  /** Modes the current driver version implements; null while no version is published. */
  modes(): Iterable<string> | null;
  /** False for a gateway type that serves without any driver (a UG): no version is then no mode to wait for. */
  needsDriver: boolean;
  /** Request kinds of the gateway type and their modes (REQUEST_KINDS). */
  kinds: Record<string, readonly DriverMode[]>;
  /** Live driver actors of a mode as last seen. */
  liveActors(mode: string): number;
  /** Counts live actors again from Redis now (the slow path, only while something is missing). */
  recount(): Promise<unknown>;
}

export interface ReadinessReport {
  /** Every kind of request can be served (what a load balancer's health check wants). */
  ready: boolean;
  redis: boolean;
  /** What keeps some request from being served: "redis", "driver version", "driver:<mode>". */
  missing: string[];
  actors: Record<string, number>;
  /** Per kind of request ("read", "write", ...): whether it can be served now. */
  serves: Record<string, boolean>;
}

export class Readiness {
  private last: ReadinessReport = { ready: false, redis: false, missing: ['not checked yet'], actors: {}, serves: {} };
  /** What the last update found missing for each mode a request may use (empty: nothing). */
  private lackOf = new Map<string, string[]>();
  private lackAll: string[] = ['not checked yet'];

  constructor(private readonly sources: ReadinessSources) {}

  get ready(): boolean {
    return this.last.ready;
  }

  /** Recomputes the flags from what is known in memory. */
  update(): ReadinessReport {
    const redis = this.sources.redisUp();
    const modes = this.sources.modes();
    // Missing for every request, whatever its modes.
    const always: string[] = redis ? [] : ['redis'];
    if (!modes && this.sources.needsDriver) always.push('driver version');
    const missing = [...always];
    const actors: Record<string, number> = {};
    const implemented = new Set(modes ?? []);
    for (const mode of implemented) {
      const n = this.sources.liveActors(mode);
      actors[`driver:${mode}`] = n;
      if (n === 0) missing.push(`driver:${mode}`);
    }
    const lackOf = new Map<string, string[]>();
    const serves: Record<string, boolean> = {};
    for (const [kind, used] of Object.entries(this.sources.kinds)) {
      for (const mode of used) {
        lackOf.set(mode, implemented.has(mode) && actors[`driver:${mode}`] === 0 ? [...always, `driver:${mode}`] : always);
      }
      serves[kind] = used.every((m) => lackOf.get(m)!.length === 0);
    }
    this.lackOf = lackOf;
    this.lackAll = always;
    this.last = { ready: missing.length === 0, redis, missing, actors, serves };
    return this.last;
  }

  report(): ReadinessReport {
    return this.last;
  }

  /** What keeps calls to these modes from being served now, as last seen. */
  private lacking(modes: readonly DriverMode[]): string[] {
    const out = new Set<string>();
    for (const m of modes) for (const what of this.lackOf.get(m) ?? this.lackAll) out.add(what);
    return [...out];
  }

  /**
   * For the data plane, before calls to `modes`: resolves when each can be served, else recounts
   * once (an actor may just have started) and throws a 503 with Retry-After naming what is missing.
   */
  async require(modes: readonly DriverMode[]): Promise<void> {
    if (this.last.ready || this.lacking(modes).length === 0) return;
    if (this.sources.redisUp()) await this.sources.recount().catch(() => undefined);
    this.update();
    const lacking = this.lacking(modes);
    if (lacking.length > 0) throw this.refusal(lacking);
  }

  private refusal(lacking: string[]): HttpError {
    return unavailable(`gateway cannot serve this request now (not ready): missing ${lacking.join(', ')}`);
  }

  /**
   * GET /ready: 200 when every kind of request can be served, else 503; either way a JSON body
   * naming what is missing and which kinds can be served (`serves`).
   */
  async answer(ctx: Context): Promise<void> {
    if (!this.last.ready && this.sources.redisUp()) await this.sources.recount().catch(() => undefined);
    const r = this.update();
    ctx.status = r.ready ? 200 : 503;
    if (!r.ready) ctx.set('Retry-After', RETRY_AFTER_S);
    ctx.body = r;
  }
}
