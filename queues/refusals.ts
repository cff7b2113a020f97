// What actors refused because Redis handed them something they could not authenticate: driver
// bundles (drivers/bundle-signature.ts) and calls (job-mac.ts). Counted in one Redis hash per
// gateway, as actor restarts are, so that any http actor can export the counts as metrics; a
// Redis client can reset them, so each refusal is also logged by the actor that refused.
import { keys } from './names.js';
import type { RedisClient } from './redis.js';

/** Counts a refused bundle ("bundle", reason) or call ("call", mode, reason). */
export function countRefusal(redis: RedisClient, gateway: string, ...labels: string[]): void {
  redis.hincrby(keys.refusals(gateway), labels.join('|'), 1).catch(() => {});
}

export interface RefusalCounts {
  bundles: { reason: string; n: number }[];
  calls: { mode: string; reason: string; n: number }[];
}

export async function readRefusals(redis: RedisClient, gateway: string): Promise<RefusalCounts> {
  const out: RefusalCounts = { bundles: [], calls: [] };
  for (const [field, n] of Object.entries(await redis.hgetall(keys.refusals(gateway)))) {
    const [kind, a, b] = field.split('|');
    if (kind === 'bundle' && a) out.bundles.push({ reason: a, n: Number(n) });
    else if (kind === 'call' && a && b) out.calls.push({ mode: a, reason: b, n: Number(n) });
  }
  return out;
}

/**
 * At most one log line per interval: a flood of forged jobs must not become a flood of log lines.
 * take() says whether to log now, and how many were left unlogged since the last line.
 */
export class LogThrottle {
  private last = 0;
  private quiet = 0;

  constructor(private readonly intervalMs = 10_000) {}

  take(now = Date.now()): { log: boolean; unlogged: number } {
    if (now - this.last < this.intervalMs) {
      this.quiet++;
      return { log: false, unlogged: this.quiet };
    }
    const unlogged = this.quiet;
    this.last = now;
    this.quiet = 0;
    return { log: true, unlogged };
  }
}
