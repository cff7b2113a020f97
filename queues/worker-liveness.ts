// A queue worker that stops taking jobs while it still says it runs: BullMQ's known failure after a
// Redis failover or reconnect (its blocking connection wedged or unblocked for good, isRunning()
// still true). The check sees it from outside: jobs have been waiting in the worker's queue for a
// while, the worker has free slots, and it has taken none of them. Then it calls onStuck (which
// replaces the worker).

export interface LivenessProbe {
  /** Jobs waiting in the worker's queue now. */
  waiting(): Promise<number>;
  /** Jobs the worker has taken so far (any counter that grows with each job). */
  taken(): number;
  /** True while every slot of the worker is busy (then waiting jobs are normal). */
  busy(): boolean;
  onStuck(): Promise<void>;
}

/**
 * How often to look, and how long jobs may wait with free slots before the worker counts as stuck:
 * short enough that a call waiting behind a wedged worker is still answered within its deadline.
 */
export const LIVENESS_CHECK_MS = 1000;
export const STUCK_AFTER_MS = 2500;

export class WorkerLiveness {
  private timer: NodeJS.Timeout;
  private checking = false;
  /** When waiting jobs were first seen with nothing taken since, and the taken count then. */
  private workSeenAt: number | null = null;
  private takenThen = 0;

  constructor(private readonly probe: LivenessProbe, private readonly stuckAfterMs = STUCK_AFTER_MS, checkMs = LIVENESS_CHECK_MS) {
    this.timer = setInterval(() => void this.check(), checkMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.checking) return; // the previous look has not come back (Redis slow or away)
    this.checking = true;
    try {
      const waiting = this.probe.busy() ? 0 : await this.probe.waiting().catch(() => 0);
      const now = Date.now();
      const taken = this.probe.taken();
      if (waiting === 0 || taken !== this.takenThen || this.workSeenAt === null) {
        this.workSeenAt = waiting > 0 ? now : null;
        this.takenThen = taken;
        return;
      }
      if (now - this.workSeenAt < this.stuckAfterMs) return;
      this.workSeenAt = null;
      await this.probe.onStuck();
    } finally {
      this.checking = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
