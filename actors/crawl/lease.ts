// A Redis lease: at most one holder at a time, lost when the holder stops renewing within its TTL.
// Renewal and release are compare-and-act scripts, so a holder that lost the lease can neither
// extend nor free its successor's.
import type { RedisClient } from '../../queues/redis.js';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class Lease {
  constructor(private readonly redis: RedisClient, readonly key: string, readonly token: string, readonly ttlMs: number) {}

  /** Takes the lease if it is free (or already ours). */
  async acquire(): Promise<boolean> {
    if ((await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK') return true;
    return this.renew();
  }

  async renew(): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key, this.token, String(this.ttlMs))) === 1;
  }

  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.token);
  }

  async holder(): Promise<string | null> {
    return this.redis.get(this.key);
  }
}
