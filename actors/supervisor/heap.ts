// V8 heap tuning for actor processes. Chunks are Buffers whose backing stores live outside the
// JS heap, but V8 counts the external bytes allocated since its last full collection against the
// old generation's limit. An actor has a small heap (~40 MB), so with V8's default growth factor
// 1 MiB chunks set off a full mark-compact every ~10 MB of traffic: measured, 11 per second in
// both the http and the write actor at 100 MB/s of PUTCHUNKS, with write barriers and sweeping
// costing more than the pauses. A larger growth factor lets the heap breathe between collections.
import { setFlagsFromString } from 'node:v8';

/** Sets V8's heap growing factor to 1 + percent/100 for this process; 0 keeps V8's own. */
export function tuneHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
}
