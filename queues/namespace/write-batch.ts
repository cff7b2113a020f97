// Namespace writes gathered into script calls: the commands applied in one turn of the event loop
// (a crawl publishes hundreds at once) go to Redis as one namespace-write call per MAX_BATCH, in
// the order given, each answered as if it ran alone. A crawl then pays one round trip, one
// script call and one WAIT per batch rather than per entry.
import type { RedisClient } from '../redis.js';
import { replicatedScript, type ReplicationPolicy } from '../replicas.js';

/** Most commands in one script call: Redis serves nothing else while it runs (~10 µs a command). */
const MAX_BATCH = 64;

/** One command of queues/lua/namespace-write.lua: its two keys and seven arguments. */
export interface NamespaceWrite {
  keys: [parentChildren: string, ownChildren: string];
  args: string[];
}

/** The crawl lease a write is fenced by: its key and the token it must hold. */
export interface Fence {
  leaseKey: string;
  token: string;
}

interface Pending extends NamespaceWrite {
  resolve(rc: number): void;
  reject(err: unknown): void;
}

export class WriteBatches {
  private pending: Pending[] = [];
  /** The fence of the pending commands (a batch holds one; another fence starts a new batch). */
  private leaseKey: string;
  private token = '';
  private scheduled = false;

  constructor(private readonly writer: RedisClient, private readonly replication: ReplicationPolicy, private readonly entriesKey: string) {
    this.leaseKey = entriesKey;
  }

  /** Queues one command; resolves with its answer once its batch is applied (and replicated as the policy asks). */
  write(w: NamespaceWrite, fence: Fence | null): Promise<number> {
    const leaseKey = fence?.leaseKey ?? this.entriesKey;
    const token = fence?.token ?? '';
    if (this.pending.length > 0 && (leaseKey !== this.leaseKey || token !== this.token)) this.send();
    this.leaseKey = leaseKey;
    this.token = token;
    const answer = new Promise<number>((resolve, reject) => this.pending.push({ ...w, resolve, reject }));
    if (this.pending.length >= MAX_BATCH) {
      this.send();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.send();
      });
    }
    return answer;
  }

  private send(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const keys = [this.entriesKey, this.leaseKey];
    const args = [this.token];
    for (const w of batch) {
      keys.push(...w.keys);
      args.push(...w.args);
    }
    replicatedScript(this.writer, this.replication, 'namespaceWrite', keys, args).then((answers) => {
      batch.forEach((w, i) => w.resolve(Number((answers as unknown[])[i])));
    }, (err: unknown) => {
      for (const w of batch) w.reject(err);
    });
  }
}
