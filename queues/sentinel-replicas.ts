// The replicas the sentinels could promote if the master failed now. A master's own ROLE lists
// only the replicas streaming from it: right after a failover the new master has none yet, and a
// replica resyncing has dropped off. Waiting for that many acknowledged writes that one node held,
// and a second failover (a busy host missing down-after-milliseconds is enough) lost them. Every
// replica a sentinel sees up is a candidate for promotion, so every one must have the write.
// Sentinel's own rules for a candidate (its replica selection) are followed: not down or
// unreachable, priority above 0, its link to the master down at most ten times
// down-after-milliseconds (the sentinels learn the link's state from INFO, up to 10 s late: a
// replica is counted a little longer than it could be chosen, never shorter). One exception: a
// replica with no data from the master since it started (a restarted old master rejoining:
// replication offset 0, link down) ranks below every replica that has some, so Sentinel picks it
// only when no other candidate exists; waiting for it would refuse every write until its first
// full sync. It is not counted, except that a master whose only candidates are such replicas still
// needs one of them to confirm.
import { Redis } from 'ioredis';
import { tlsOf, type RedisTarget } from './redis.js';

type SentinelTarget = Extract<RedisTarget, { kind: 'sentinel' }>;

/** A replica with one of these flags is not promoted (Sentinel's replica selection skips it). */
const UNPROMOTABLE = /(^|,)(s_down|o_down|disconnected)(,|$)/;

/** How long one sentinel may take to connect and answer before the next is asked. */
const ASK_TIMEOUT_MS = 1000;

function field(fields: string[], name: string): string {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? fields[i + 1] ?? '' : '';
}

/** Counts a Sentinel-watched master's promotable replicas, asking the sentinels in turn. */
export class SentinelReplicas {
  /** The sentinel that answered last: asked first next time. */
  private first = 0;

  constructor(private readonly target: SentinelTarget) {}

  /** Promotable replicas as one sentinel sees them; null when no sentinel answered. */
  async count(): Promise<number | null> {
    const { sentinels } = this.target;
    for (let i = 0; i < sentinels.length; i++) {
      const at = (this.first + i) % sentinels.length;
      const n = await this.ask(sentinels[at]!).catch(() => null);
      if (n !== null) {
        this.first = at;
        return n;
      }
    }
    return null;
  }

  private async ask(sentinel: { host: string; port: number }): Promise<number> {
    const tls = this.target.tls ? tlsOf(this.target) : undefined;
    const conn = new Redis({
      host: sentinel.host, port: sentinel.port, connectTimeout: ASK_TIMEOUT_MS, commandTimeout: ASK_TIMEOUT_MS,
      maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true,
      ...(this.target.sentinelPassword !== null ? { password: this.target.sentinelPassword } : {}),
      ...(tls ? { tls } : {}),
    });
    conn.on('error', () => {});
    try {
      await conn.connect();
      const [master, replicas] = (await Promise.all([
        conn.call('SENTINEL', 'MASTER', this.target.name), conn.call('SENTINEL', 'REPLICAS', this.target.name),
      ])) as [string[], string[][]];
      const linkDownMax = 10 * Number(field(master, 'down-after-milliseconds'));
      const candidates = replicas.filter((r) => !UNPROMOTABLE.test(field(r, 'flags')) && field(r, 'slave-priority') !== '0'
        && !(Number(field(r, 'master-link-down-time')) > linkDownMax));
      const holding = candidates.filter((r) => field(r, 'master-link-status') === 'ok' || Number(field(r, 'slave-repl-offset')) > 0).length;
      return Math.max(holding, Math.min(1, candidates.length));
    } finally {
      conn.disconnect();
    }
  }
}
