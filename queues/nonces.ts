// Replay protection's memory: every (sender, nonce) a gateway accepted within limits.replay_window_s,
// at a known, small cost in Redis (~8-10 bytes a nonce at volume; lua/nonces.lua says how). One Lua
// call checks and adds, atomically: of two requests racing with one nonce, exactly one wins. A
// nonce counts as remembered once the replicas the policy asks for have it (replicas.ts).
import { keys } from './names.js';
import type { RedisClient } from './redis.js';
import { NO_WAIT, NotReplicatedError, replicatedScript, type ReplicationPolicy } from './replicas.js';

/** Shards per sender: each is a hash tag of its own, so a busy sender spreads over a Redis Cluster. */
export const NONCE_SHARDS = 16;
/** Time buckets per window: a nonce is remembered at most window * (1 + 1/BUCKETS). */
export const NONCE_BUCKETS = 4;
/**
 * Average members per set before a bucket splits one: linear hashing leaves the unsplit sets with up
 * to twice the average, and 2 * 192 plus chance stays under Redis's 512-member intset limit.
 */
export const NONCE_SET_LOAD = 192;

export interface NonceStoreOptions {
  /** Milliseconds since the epoch; default: Redis's own clock (one clock for every host). */
  clock?: () => number;
  /** How many replicas must have a nonce before it counts as remembered (default: none). */
  replication?: ReplicationPolicy;
}

export class NonceStore {
  constructor(
    private readonly redis: RedisClient, private readonly gateway: string, private readonly windowMs: number,
    private readonly opts: NonceStoreOptions = {},
  ) {}

  /**
   * True the first time this (sender, nonce) is seen within the window; it is remembered from now
   * on. Rejects with NotReplicatedError (after forgetting it again, so the request may be sent
   * again) when too few replicas confirmed it.
   */
  async firstUse(sender: bigint, nonce: bigint): Promise<boolean> {
    try {
      return (await this.call('add', sender, nonce, this.opts.replication ?? NO_WAIT)) === 1;
    } catch (err) {
      if (err instanceof NotReplicatedError) await this.call('forget', sender, nonce, NO_WAIT).catch(() => undefined);
      throw err;
    }
  }

  /** Forgets the nonce (a request refused before anything was written may be sent again). */
  async release(sender: bigint, nonce: bigint): Promise<void> {
    await this.call('forget', sender, nonce, NO_WAIT);
  }

  private async call(op: 'add' | 'forget', sender: bigint, nonce: bigint, replication: ReplicationPolicy): Promise<number> {
    // Signed, as Redis stores 64-bit integers; its last nine digits pick the shard (as in nonces.lua).
    const signed = BigInt.asIntN(64, nonce);
    const shard = Number((signed < 0n ? -signed : signed) % 1_000_000_000n) % NONCE_SHARDS;
    return Number(await replicatedScript(this.redis, replication, 'nonces', [keys.nonces(this.gateway, sender, shard)], [
      op, signed.toString(), String(this.opts.clock?.() ?? 0), String(this.windowMs), String(NONCE_BUCKETS), String(NONCE_SET_LOAD), String(NONCE_SHARDS),
    ]));
  }
}
