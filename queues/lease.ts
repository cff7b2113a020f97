// Whether a serving actor still owns the job it works on. BullMQ hands a job whose lock expired
// (its worker paused, partitioned away or too slow to renew) to another worker; the first one may
// still finish its driver call afterwards. Its answer must not count: before it runs a call and
// before it answers, an attempt checks that the lock still holds its token (extending it, one
// BullMQ script in the queue's slot). The check costs nothing while the job is young: a lock set
// lockMs ago by this worker's own clock cannot have expired before lockMs/2 have passed.
import type { Job } from 'bullmq';

export class JobLease {
  /** Epoch ms (this process's clock) from which the lock is known to run lockMs. */
  private since: number;
  private lost = false;

  constructor(private readonly job: Job, private readonly token: string | undefined, private readonly lockMs: number) {
    // processedOn is this worker's Date.now() when it asked Redis for the job (and the lock).
    this.since = job.processedOn ?? 0;
  }

  /** The attempt this worker runs (1 for the first; BullMQ counts each start). */
  get attempt(): number {
    return this.job.attemptsStarted;
  }

  /** Told by BullMQ that a renewal found the lock gone: no later check asks Redis. */
  lose(): void {
    this.lost = true;
  }

  /** True while this attempt still owns the job; false for good once it does not. */
  async held(): Promise<boolean> {
    if (this.lost) return false;
    const now = Date.now();
    const age = now - this.since;
    if (age >= 0 && age < this.lockMs / 2) return true;
    if (this.token === undefined) return false;
    let reply: unknown;
    try {
      reply = await this.job.extendLock(this.token, this.lockMs);
    } catch {
      return false; // cannot tell now (Redis away): do not act, but ask again next time
    }
    if (Number(reply) === 1) this.since = now;
    else this.lost = true;
    return !this.lost;
  }
}
