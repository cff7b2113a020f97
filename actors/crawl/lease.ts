// A Redis lease: at most one holder at a time, lost when the holder stops renewing within its TTL.
// Renewal and release are compare-and-act scripts (queues/lua/lease-*.lua), so a holder that lost
// the lease can neither extend nor free its successor's.
import type { RedisClient } from '../../queues/redis.js';
import { runScript } from '../../queues/scripts.js';

export class Lease {
  constructor(private readonly redis: RedisClient, readonly key: string, readonly token: string, readonly ttlMs: number) {}

  /** Takes the lease if it is free (or already ours). */
  async acquire(): Promise<boolean> {
    if ((await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK') return true;
    return this.renew();
  }

  async renew(): Promise<boolean> {
    return (await runScript(this.redis, 'leaseRenew', [this.key], [this.token, String(this.ttlMs)])) === 1;
  }

  async release(): Promise<void> {
    await runScript(this.redis, 'leaseRelease', [this.key], [this.token]);
  }

  async holder(): Promise<string | null> {
    return this.redis.get(this.key);
  }
}
