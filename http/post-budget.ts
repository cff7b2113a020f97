// The bytes of POST bodies one http actor may hold at once (limits.post_bytes_in_flight). A POST
// takes a share before it reads anything (what its control plane may need), and the size of its
// data plane once its signed Request has been checked; it gives all back when its answer is sent.
// What does not fit gets 503 with Retry-After at once, before its body is read.

export class PostBudget {
  private held = 0;

  constructor(readonly limit: number) {}

  /** Bytes held now. */
  get inFlight(): number {
    return this.held;
  }

  /**
   * Takes `bytes` when they fit. A POST alone always fits (its own size is bounded by
   * limits.max_upload_bytes), so a budget smaller than one upload cannot starve it.
   */
  take(bytes: number, alreadyHeld = 0): boolean {
    if (this.held + bytes > this.limit && this.held - alreadyHeld > 0) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }
}

/** One POST's share of the budget: grows once, is given back once. */
export class PostShare {
  private bytes = 0;
  private done = false;

  constructor(private readonly budget: PostBudget) {}

  /** Adds bytes to this POST's share; false when they do not fit. */
  grow(bytes: number): boolean {
    if (this.done) return false;
    if (!this.budget.take(bytes, this.bytes)) return false;
    this.bytes += bytes;
    return true;
  }

  release(): void {
    if (this.done) return;
    this.done = true;
    this.budget.give(this.bytes);
    this.bytes = 0;
  }
}
