// Runs async work over a list with a bounded number in flight: a POST's driver calls, a UG's
// block transforms. Results come back in order.

/**
 * Runs fn over items with at most `limit` running at once. Once a result satisfies `stop` (or fn
 * throws), no further item is started: results of items never started are undefined.
 */
export async function mapLimit<T, R>(
  items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>, stop?: (result: R) => boolean,
): Promise<(R | undefined)[]> {
  const out = new Array<R | undefined>(items.length);
  let next = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        stopped = true;
        throw err;
      }
      if (stop?.(out[i]!)) stopped = true;
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
