// Whether this gateway can serve data-plane requests: Redis reachable, a driver version published
// (unless the gateway type serves without one) and a live driver actor for every mode that version
// implements. Kept as a flag in memory, recomputed when the
// live-actor view refreshes or a Redis connection changes state, so a request reads a boolean.
import type { Context } from 'koa';
import { RETRY_AFTER_S, unavailable, type HttpError } from './errors.js';

export interface ReadinessSources {
  /** Redis connections this actor needs are up (ioredis status 'ready'). */
  redisUp(): boolean;
  /** Modes the current driver version implements; null while no version is published. */
  modes(): Iterable<string> | null;
  /** False for a gateway type that serves without any driver (a UG): no version is then no mode to wait for. */
  needsDriver: boolean;
  /** Live driver actors of a mode as last seen. */
  liveActors(mode: string): number;
  /** Counts live actors again from Redis now (the slow path, only while not ready). */
  recount(): Promise<unknown>;
}

export interface ReadinessReport {
  ready: boolean;
  redis: boolean;
  /** What keeps the gateway from being ready: "redis", "driver version", "driver:<mode>". */
  missing: string[];
  actors: Record<string, number>;
}

export class Readiness {
  private last: ReadinessReport = { ready: false, redis: false, missing: ['not checked yet'], actors: {} };

  constructor(private readonly sources: ReadinessSources) {}

  get ready(): boolean {
    return this.last.ready;
  }

  /** Recomputes the flag from what is known in memory. */
  update(): ReadinessReport {
    const redis = this.sources.redisUp();
    const missing: string[] = redis ? [] : ['redis'];
    const actors: Record<string, number> = {};
    const modes = this.sources.modes();
    if (!modes && this.sources.needsDriver) missing.push('driver version');
    for (const mode of modes ?? []) {
      const n = this.sources.liveActors(mode);
      actors[`driver:${mode}`] = n;
      if (n === 0) missing.push(`driver:${mode}`);
    }
    this.last = { ready: missing.length === 0, redis, missing, actors };
    return this.last;
  }

  report(): ReadinessReport {
    return this.last;
  }

  /**
   * For the data plane: resolves when ready, else recounts once (an actor may just have started)
   * and throws a 503 with Retry-After naming what is missing.
   */
  async require(): Promise<void> {
    if (this.last.ready) return;
    if (this.sources.redisUp()) await this.sources.recount().catch(() => undefined);
    const r = this.update();
    if (!r.ready) throw this.refusal(r);
  }

  private refusal(r: ReadinessReport): HttpError {
    return unavailable(`gateway not ready: missing ${r.missing.join(', ')}`);
  }

  /** GET /ready: 200 or 503 with a JSON body naming what is missing. */
  async answer(ctx: Context): Promise<void> {
    if (!this.last.ready && this.sources.redisUp()) await this.sources.recount().catch(() => undefined);
    const r = this.update();
    ctx.status = r.ready ? 200 : 503;
    if (!r.ready) ctx.set('Retry-After', RETRY_AFTER_S);
    ctx.body = r;
  }
}
