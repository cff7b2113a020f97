// An actor's own stop waits on Redis (its heartbeat's removal, its queue workers' close, a lease's
// release) and on its driver's shutdown. Either may never answer: a Redis frozen or partitioned
// away keeps its connections open and silent. By then the actor has removed its heartbeat (or
// cannot), so it counts as dead, and its supervisor starts a fresh one only once it has exited.
import type { Logger } from 'pino';

/** Grace beyond the calls' own bound (request_timeout_ms) for the rest of a stop. */
export const STOP_GRACE_MS = 5_000;

/**
 * Exits with `code` if the stop begun now has not ended within `callBoundMs` + STOP_GRACE_MS.
 * Returns what cancels the bound once the stop has finished on its own.
 */
export function boundStop(what: string, code: number, callBoundMs: number, log: Logger, exit: (code: number) => void): () => void {
  const afterMs = callBoundMs + STOP_GRACE_MS;
  const timer = setTimeout(() => {
    log.warn({ code, afterMs }, `${what} stop is taking too long; exiting`);
    exit(code);
  }, afterMs);
  return () => clearTimeout(timer);
}
