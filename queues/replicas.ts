// Acknowledged means replicated. A write whose loss a client would notice (a namespace change, a
// remembered nonce) is followed by WAIT on the same connection, in the same pipeline, so it goes
// to the node that took the write (in a Cluster: the master of the keys' slot) and counts the
// replicas that have it. When the master has replicas and fewer than `acks` confirm within the
// timeout, the caller answers 503 instead of acknowledging what one failover could undo. A master
// without replicas (a single Redis, the private one) is not waited for.
//
// WAIT blocks its connection until it returns: commands queued behind it on that connection wait
// too, typically a replica's round trip (well under a millisecond on a LAN).
import calculateSlot from 'cluster-key-slot';
import type { ChainableCommander } from 'ioredis';
import { Cluster, targetOf, type RedisClient } from './redis.js';
import { SentinelReplicas } from './sentinel-replicas.js';
import { defineScript, pipeScript, type ScriptName } from './scripts.js';

export interface ReplicationPolicy {
  /** Replicas that must hold the write (0: never wait; ALL_REPLICAS: every one the master has). */
  acks: number;
  /** How long WAIT may take. */
  timeoutMs: number;
}

export const NO_WAIT: ReplicationPolicy = { acks: 0, timeoutMs: 0 };
/**
 * Every replica the master has when it takes the write. Sentinel promotes the replica it saw
 * furthest ahead in its last INFO, which may be seconds old: with two replicas and one confirmation,
 * the promoted one can be the other, and an acknowledged write is lost (seen under load). With
 * Sentinel, "has" includes every replica the sentinels could promote (sentinel-replicas.ts).
 */
export const ALL_REPLICAS = Number.MAX_SAFE_INTEGER;

/** The write reached its master but too few replicas confirmed it in time: answer 503, do not acknowledge. */
export class NotReplicatedError extends Error {
  override name = 'NotReplicatedError';
}

/** Times a write goes out again after its slot moved to another node. */
const MAX_REDIRECTS = 3;

/** How long a master's replica count (from ROLE, and from the sentinels) is trusted before it is asked again. */
const ROLE_TTL_MS = 1000;

interface ReplicaCount {
  count: number;
  at: number;
  asking: Promise<number> | null;
  /** With Sentinel: the replicas the sentinels could promote (kept across failovers; a failing sentinel leaves it as it was). */
  sentinels: SentinelReplicas | null;
  promotable: number;
  promotableAt: number;
  askingSentinels: Promise<void> | null;
}

const counts = new WeakMap<RedisClient, ReplicaCount>();

async function askRole(redis: RedisClient, entry: ReplicaCount): Promise<number> {
  try {
    const role = (await redis.call('ROLE')) as [string, number, unknown[]?];
    entry.count = role[0] === 'master' ? (role[2]?.length ?? 0) : 0;
    entry.at = Date.now();
    return entry.count;
  } finally {
    entry.asking = null;
  }
}

/** The sentinels' count of promotable replicas: asked in the background once known, awaited the first time. */
function promotable(entry: ReplicaCount): number | Promise<number> {
  const sentinels = entry.sentinels;
  if (!sentinels) return 0;
  if (Date.now() - entry.promotableAt >= ROLE_TTL_MS) {
    entry.askingSentinels ??= sentinels.count().then((n) => {
      if (n !== null) entry.promotable = n;
      entry.promotableAt = Date.now();
    }).finally(() => { entry.askingSentinels = null; });
  }
  return entry.promotableAt === 0 && entry.askingSentinels ? entry.askingSentinels.then(() => entry.promotable) : entry.promotable;
}

/**
 * Replicas that must confirm a write of `key` for it to survive a failover: the master's streaming
 * replicas (ROLE), and with Sentinel at least every replica the sentinels could promote; at most
 * ROLE_TTL_MS old.
 */
export async function replicasOf(redis: RedisClient, key: string): Promise<number> {
  // A Cluster learns each slot's master and replicas with its slot table.
  if (redis instanceof Cluster) return Math.max(0, (redis.slots[calculateSlot(key)]?.length ?? 1) - 1);
  let entry = counts.get(redis);
  if (!entry) {
    const target = targetOf(redis);
    entry = {
      count: 0, at: 0, asking: null,
      sentinels: target?.kind === 'sentinel' ? new SentinelReplicas(target) : null, promotable: 0, promotableAt: 0, askingSentinels: null,
    };
    counts.set(redis, entry);
    // After a failover the connection reaches another master, with replicas of its own.
    redis.on('ready', () => { entry!.at = 0; });
  }
  const sentinelView = promotable(entry);
  const streaming = Date.now() - entry.at < ROLE_TTL_MS ? entry.count : await (entry.asking ??= askRole(redis, entry));
  return Math.max(streaming, await sentinelView);
}

/**
 * Runs the commands `build` adds to a pipeline (their keys in one slot, `key` among them), then
 * WAIT on the same connection when the policy and the master call for it. Resolves with the
 * commands' replies; rejects with the first command's error, or NotReplicatedError.
 */
export async function replicatedWrite(
  redis: RedisClient, policy: ReplicationPolicy, key: string, build: (pipeline: ChainableCommander) => void,
): Promise<unknown[]> {
  let wanted: number;
  let commands: number;
  let results: [Error | null, unknown][];
  for (let attempt = 1; ; attempt++) {
    wanted = policy.acks > 0 ? Math.min(policy.acks, await replicasOf(redis, key)) : 0;
    const pipeline = redis.pipeline();
    build(pipeline);
    commands = pipeline.length;
    if (wanted > 0) pipeline.wait(wanted, policy.timeoutMs);
    results = (await pipeline.exec()) ?? [];
    // The slot moved (a failover): the write was refused, not made. ioredis follows a redirect of
    // a pipeline only when every command got it, and WAIT answers anywhere: learn the new owner
    // and send it again.
    const moved = results.some(([err]) => err && /^(MOVED|ASK|TRYAGAIN) /.test(err.message));
    if (!(redis instanceof Cluster) || !moved || attempt >= MAX_REDIRECTS) break;
    await new Promise<void>((resolve) => redis.refreshSlotsCache(() => resolve()));
  }
  for (const [err] of results) if (err) throw err;
  if (wanted > 0) {
    const confirmed = Number(results[commands]?.[1] ?? 0);
    if (confirmed < wanted) {
      throw new NotReplicatedError(`the write reached the master, but ${confirmed} of the ${wanted} replica(s) asked for confirmed it within ${policy.timeoutMs} ms (replication.acks)`);
    }
  }
  return results.slice(0, commands).map(([, r]) => r);
}

/** A script run by replicatedWrite: resolves with its reply once replicated as the policy asks. */
export async function replicatedScript(
  redis: RedisClient, policy: ReplicationPolicy, name: ScriptName, keys: readonly string[], args: readonly (string | Buffer)[],
): Promise<unknown> {
  defineScript(redis, name);
  const [reply] = await replicatedWrite(redis, policy, keys[0]!, (p) => pipeScript(p, name, keys, args));
  return reply;
}
