// The serving side of shared block_vecs (ask.ts): each is fetched from Redis and decoded once per
// actor, however many calls of its POST the actor serves, and every call gets the same frozen array.
import { createHash } from 'node:crypto';
import { decodeBlockVec } from '../proto/messages.js';
import type { SharedBlockVec } from './ask.js';
import type { RedisClient } from './redis.js';

/** POSTs whose block_vec an actor keeps at once: calls of a few POSTs interleave in its queue. */
const KEPT = 16;

export class BlockVecCache {
  private readonly entries = new Map<string, Promise<SharedBlockVec | null>>();

  constructor(private readonly redis: RedisClient) {}

  /** The block_vec stored under key, or null when it expired (its POST was answered or gave up). */
  get(key: string): Promise<SharedBlockVec | null> {
    const kept = this.entries.get(key);
    if (kept) {
      this.entries.delete(key); // most recently used goes last
      this.entries.set(key, kept);
      return kept;
    }
    const loading = this.redis.getBuffer(key).then((bytes) => (bytes
      ? { key, bytes, ids: Object.freeze(decodeBlockVec(bytes)), sha256: createHash('sha256').update(bytes).digest('hex') }
      : null));
    loading.then((v) => { if (!v) this.entries.delete(key); }, () => this.entries.delete(key));
    this.entries.set(key, loading);
    if (this.entries.size > KEPT) this.entries.delete(this.entries.keys().next().value!);
    return loading;
  }
}
