// How actors report what they refused from Redis (queues/refusals.ts): counted for metrics, and
// logged. A refused call is an attack or a replay, not an sgw fault: warn, at most one line per
// 10 s. A refused driver bundle stops a version from running: one error line per version and reason.
import type { Logger } from 'pino';
import { BundleRefused as BundleRefusedError, type BundleRefused } from '../drivers/bundle-signature.js';
import { openBundle, type OpenBundle } from '../drivers/open-driver.js';
import type { GatewayConfig } from '../proto/config/config.js';
import type { CallRefusalReason } from '../queues/job-mac.js';
import { countRefusal, LogThrottle } from '../queues/refusals.js';
import type { RedisClient } from '../queues/redis.js';

/**
 * An onRefused for a CallServer of `mode`. A call past its deadline is what a replay looks like,
 * but also what a long backlog leaves behind: info. Any other refusal means someone wrote to
 * Redis without the gateway's key: warn.
 */
export function callRefusals(redis: RedisClient, gateway: string, mode: string, log: Logger): (reason: CallRefusalReason, jobId: string | undefined) => void {
  const throttles = { expired: new LogThrottle(), forged: new LogThrottle() };
  return (reason, jobId) => {
    countRefusal(redis, gateway, 'call', mode, reason);
    const expired = reason === 'expired';
    const { log: now, unlogged } = throttles[expired ? 'expired' : 'forged'].take();
    if (!now) return;
    if (expired) log.info({ mode, reason, job: jobId, unlogged }, 'did not run a call past its deadline (a backlog, or a replay)');
    else log.warn({ mode, reason, job: jobId, unlogged }, 'refused a call from Redis without running it: it is not authenticated (forged, or altered in Redis)');
  };
}

/** Reports a refused bundle (the caller told it once per version and reason). */
export function bundleRefused(redis: RedisClient, gateway: string, err: BundleRefused, log: Logger, outcome: string): void {
  countRefusal(redis, gateway, 'bundle', err.reason);
  log.error({ version: err.hash, reason: err.reason }, `${err.message}; ${outcome}`);
}

/**
 * Opens a bundle version for an actor: null when it is not in Redis; 'refused' (reported) when its
 * signature does not check out, so the actor loads no code of it.
 */
export async function openChecked(redis: RedisClient, config: GatewayConfig, hash: string, log: Logger): Promise<OpenBundle | null | 'refused'> {
  try {
    return await openBundle(redis, config.gateway.key, hash, config.gateway.private_key);
  } catch (err) {
    if (!(err instanceof BundleRefusedError)) throw err;
    bundleRefused(redis, config.gateway.key, err, log, 'not loading it');
    return 'refused';
  }
}
