// Replay protection's memory: every (sender, nonce) a gateway accepted within limits.replay_window_s,
// at a known, small cost in Redis (~8-10 bytes a nonce at volume; nonces.lua says how). One Lua
// call checks and adds, atomically: of two requests racing with one nonce, exactly one wins.
import { readFileSync } from 'node:fs';
import { packagedFile } from '../drivers/packaged-files.js';
import { keys } from './names.js';
import type { Redis } from './redis.js';

/** Shards per sender: each is a hash tag of its own, so a busy sender spreads over a Redis Cluster. */
export const NONCE_SHARDS = 16;
/** Time buckets per window: a nonce is remembered at most window * (1 + 1/BUCKETS). */
export const NONCE_BUCKETS = 4;
/**
 * Average members per set before a bucket splits one: linear hashing leaves the unsplit sets with up
 * to twice the average, and 2 * 192 plus chance stays under Redis's 512-member intset limit.
 */
export const NONCE_SET_LOAD = 192;

const SCRIPT = 'sgwNonces';
type NonceCommand = (prefix: string, op: 'add' | 'forget', nonce: string, now: number, windowMs: number, buckets: number, load: number, shards: number) => Promise<number>;

let source: string | null = null;

export interface NonceStoreOptions {
  /** Milliseconds since the epoch; default: Redis's own clock (one clock for every host). */
  clock?: () => number;
}

export class NonceStore {
  private readonly command: NonceCommand;

  constructor(redis: Redis, private readonly gateway: string, private readonly windowMs: number, private readonly opts: NonceStoreOptions = {}) {
    if (!(SCRIPT in redis)) {
      source ??= readFileSync(packagedFile('queues/nonces.lua'), 'utf8');
      redis.defineCommand(SCRIPT, { numberOfKeys: 1, lua: source });
    }
    const defined = (redis as unknown as Record<string, NonceCommand>)[SCRIPT]!;
    this.command = defined.bind(redis);
  }

  /** True the first time this (sender, nonce) is seen within the window; it is remembered from now on. */
  async firstUse(sender: bigint, nonce: bigint): Promise<boolean> {
    return (await this.call('add', sender, nonce)) === 1;
  }

  /** Forgets the nonce (a request refused before anything was written may be sent again). */
  async release(sender: bigint, nonce: bigint): Promise<void> {
    await this.call('forget', sender, nonce);
  }

  private call(op: 'add' | 'forget', sender: bigint, nonce: bigint): Promise<number> {
    // Signed, as Redis stores 64-bit integers; its last nine digits pick the shard (as in nonces.lua).
    const signed = BigInt.asIntN(64, nonce);
    const shard = Number((signed < 0n ? -signed : signed) % 1_000_000_000n) % NONCE_SHARDS;
    return this.command(
      keys.nonces(this.gateway, sender, shard), op, signed.toString(), this.opts.clock?.() ?? 0,
      this.windowMs, NONCE_BUCKETS, NONCE_SET_LOAD, NONCE_SHARDS,
    );
  }
}
