// Timestamps that cross hosts (a call's deadline in its job, the expiry of an actor's heartbeat)
// are on Redis's clock, not the host's: hosts' clocks may disagree by minutes, and a worker host
// five minutes ahead would drop every call as expired and keep its dead actors "alive" for five
// minutes. Each process measures how far Redis's clock (TIME) is from its own and converts at the
// boundary; inside a process every deadline stays on the local clock.
import type { RedisClient } from './redis.js';

const RESYNC_MS = 30_000;
/** A measurement whose round trip took longer than this is too blurred to use. */
const MAX_RTT_MS = 500;

/** Redis's clock minus this process's, in ms. */
let offset = 0;
/** Local time of the last good measurement; 0: never measured. */
let measuredAt = 0;
let inFlight: Promise<void> | null = null;

async function measure(redis: RedisClient): Promise<void> {
  try {
    const before = Date.now();
    const [s, us] = await redis.time();
    const after = Date.now();
    if (after - before > MAX_RTT_MS) return;
    offset = Number(s) * 1000 + Math.floor(Number(us) / 1000) - Math.round((before + after) / 2);
    measuredAt = after;
  } catch {
    // Redis away: keep the last offset; the next call measures again
  }
}

/**
 * Resolves once the offset to Redis's clock is known (at once when it is; a first measurement is
 * awaited). Measures again in the background every 30 s.
 */
export function syncClusterClock(redis: RedisClient): Promise<void> {
  if (measuredAt !== 0 && Date.now() - measuredAt < RESYNC_MS) return Promise.resolve();
  inFlight ??= measure(redis).finally(() => { inFlight = null; });
  return measuredAt !== 0 ? Promise.resolve() : inFlight;
}

/** A local timestamp on Redis's clock (what goes into Redis). */
export function toClusterTime(local: number): number {
  return local + offset;
}

/** A timestamp from Redis's clock on the local one. */
export function fromClusterTime(cluster: number): number {
  return cluster - offset;
}

/** Now, on Redis's clock. */
export function clusterNow(): number {
  return toClusterTime(Date.now());
}
