// Graceful stop on SIGTERM and SIGINT, shared by every sgw process that runs until stopped.

/** Stops gracefully on SIGTERM/SIGINT, once, then exits. */
export function onSignals(stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop(signal).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
