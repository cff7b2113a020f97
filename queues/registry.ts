// Which actors are alive, on any host. Each actor refreshes its score (an expiry time) in a
// per-role sorted set every second or so and keeps a small hash describing itself; a reader
// counts members whose expiry is still ahead. A dead actor simply stops being counted.
import { hostname } from 'node:os';
import { keys } from './names.js';
import type { RedisClient } from './redis.js';
import { clusterNow, syncClusterClock, toClusterTime } from './cluster-clock.js';

const BEAT_MS = 1000;
const TTL_MS = 4000;

export interface ActorInfo {
  instance: string;
  role: string;
  host: string;
  pid: number;
  version: string;
  started: number;
  jobs: number;
  /** Numbers an actor publishes about itself with each beat (e.g. the chunk store's usage). */
  usage: Record<string, number>;
}

/** Usage fields are stored in the actor's hash with this prefix, next to the fixed ones. */
const USAGE_PREFIX = 'usage.';

/** Keeps one actor's entry fresh until stopped. */
export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  jobs = 0;

  /** `usage` is read once per beat, so it must be cheap (counters already kept in memory). */
  constructor(
    private readonly redis: RedisClient, private readonly gateway: string,
    readonly info: Omit<ActorInfo, 'jobs' | 'host' | 'pid' | 'started' | 'usage'>,
    private readonly usage?: () => Record<string, number>,
  ) {}

  start(): void {
    const started = Date.now();
    // Expiries are on Redis's clock: a host whose clock runs ahead must neither keep its dead
    // actors alive nor remove the live ones of the other hosts.
    const beat = async () => {
      await syncClusterClock(this.redis);
      if (this.stopped) return;
      const now = Date.now();
      const usage: Record<string, number> = {};
      for (const [k, v] of Object.entries(this.usage?.() ?? {})) usage[USAGE_PREFIX + k] = v;
      await this.redis.multi()
        .zadd(keys.alive(this.gateway, this.info.role), toClusterTime(now + TTL_MS), this.info.instance)
        .zremrangebyscore(keys.alive(this.gateway, this.info.role), '-inf', toClusterTime(now))
        .hset(keys.actor(this.gateway, this.info.instance), {
          role: this.info.role, host: hostname(), pid: process.pid, version: this.info.version,
          started, jobs: this.jobs, seen: now, ...usage,
        })
        .pexpire(keys.actor(this.gateway, this.info.instance), TTL_MS)
        .exec()
        .catch(() => {});
    };
    void beat();
    this.timer = setInterval(() => void beat(), BEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.multi()
      .zrem(keys.alive(this.gateway, this.info.role), this.info.instance)
      .del(keys.actor(this.gateway, this.info.instance))
      .exec()
      .catch(() => {});
  }
}

/** Counts live actors per role, refreshed in the background so the hot path reads memory only. */
export class LiveActors {
  private counts = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private fresh: Promise<void>;

  /** onRefresh: told after every recount (readiness follows it without its own Redis calls). */
  constructor(
    private readonly redis: RedisClient, private readonly gateway: string, private readonly roles: () => readonly string[],
    private readonly onRefresh?: () => void,
  ) {
    this.fresh = this.refresh();
    this.timer = setInterval(() => { this.fresh = this.refresh(); }, 500);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    const roles = this.roles();
    try {
      await syncClusterClock(this.redis);
      const now = clusterNow();
      const pipe = this.redis.pipeline();
      for (const r of roles) pipe.zcount(keys.alive(this.gateway, r), now, '+inf');
      const res = (await pipe.exec()) ?? [];
      const next = new Map<string, number>();
      roles.forEach((r, i) => next.set(r, Number(res[i]?.[1] ?? 0)));
      this.counts = next;
    } catch {
      this.counts = new Map(); // Redis unreachable: nothing is known to be alive
    }
    this.onRefresh?.();
  }

  /** Live actors of a role as last seen (unknown roles count as 0). */
  count(role: string): number {
    return this.counts.get(role) ?? 0;
  }

  /** Counts again from Redis now: the slow path, when the cached view says nobody is there. */
  async countFresh(role: string): Promise<number> {
    this.fresh = this.refresh();
    await this.fresh;
    return this.count(role);
  }

  /** Counts again now and returns every role's count. */
  async current(): Promise<Map<string, number>> {
    this.fresh = this.refresh();
    await this.fresh;
    return this.counts;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Every live actor of a gateway, for `sgw status`. */
export async function listActors(redis: RedisClient, gateway: string, roles: readonly string[]): Promise<ActorInfo[]> {
  await syncClusterClock(redis);
  const now = clusterNow();
  const out: ActorInfo[] = [];
  for (const role of roles) {
    const ids = await redis.zrangebyscore(keys.alive(gateway, role), now, '+inf');
    for (const instance of ids) {
      const h = await redis.hgetall(keys.actor(gateway, instance));
      if (!h.role) continue;
      const usage: Record<string, number> = {};
      for (const [k, v] of Object.entries(h)) if (k.startsWith(USAGE_PREFIX)) usage[k.slice(USAGE_PREFIX.length)] = Number(v);
      out.push({
        instance, role: h.role, host: h.host ?? '?', pid: Number(h.pid), version: h.version ?? '',
        started: Number(h.started), jobs: Number(h.jobs ?? 0), usage,
      });
    }
  }
  return out;
}

/**
 * Tells askers on this host that a call server of `mode` runs here and reads host files (blobs.ts):
 * one member per server in a per-host sorted set, scored by expiry like the actor registry. An
 * asker on a host without one sends large chunks through Redis at once, not as a file first.
 */
export class HostPresence {
  private timer: NodeJS.Timeout | null = null;
  private readonly key: string;
  /** Settles once the first beat was answered (or failed): a server is findable from then on. */
  readonly first: Promise<void>;

  constructor(private readonly redis: RedisClient, gateway: string, mode: string, hostId: string, private readonly instance: string) {
    this.key = keys.aliveOn(gateway, mode, hostId);
    this.first = this.beat();
    this.timer = setInterval(() => void this.beat(), BEAT_MS);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    await this.redis.multi()
      .zadd(this.key, now + TTL_MS, this.instance)
      .zremrangebyscore(this.key, '-inf', now)
      .pexpire(this.key, TTL_MS)
      .exec()
      .catch(() => {});
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.zrem(this.key, this.instance).catch(() => {});
  }
}

/** How long an asker trusts what it last learnt about same-host servers of a mode. */
const PEERS_FRESH_MS = 1000;

/** Whether a live call server of a mode shares this host; one ZCOUNT per mode and second at most. */
export class HostPeers {
  private readonly seen = new Map<string, { at: number; here: boolean; next?: Promise<boolean> }>();

  constructor(private readonly redis: RedisClient, private readonly gateway: string, private readonly hostId: string) {}

  /** The first look at a mode waits for Redis; later ones answer from memory and refresh behind. */
  async sameHost(mode: string): Promise<boolean> {
    const s = this.seen.get(mode);
    if (!s) return this.look(mode);
    if (Date.now() - s.at > PEERS_FRESH_MS && !s.next) s.next = this.look(mode);
    return s.here;
  }

  private async look(mode: string): Promise<boolean> {
    const now = Date.now();
    try {
      const here = (await this.redis.zcount(keys.aliveOn(this.gateway, mode, this.hostId), now, '+inf')) > 0;
      this.seen.set(mode, { at: now, here });
      return here;
    } catch {
      // Not connected yet (or Redis away): Redis it is, and the next call looks again.
      const s = this.seen.get(mode);
      if (s) delete s.next;
      return s?.here ?? false;
    }
  }
}
