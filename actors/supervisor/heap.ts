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

/**
 * Actor roles whose calls are rare. Their young generation is capped at 1 MB semi-spaces: V8 grows
 * it to 16 MB while the modules load and keeps it, which is most of an idle actor's heap (measured
 * ~15 MB less RSS per actor). Busy actors keep V8's own size: capped, the http actor spent ~10%
 * more CPU per 4 KiB cache hit on more frequent scavenges.
 */
const RARELY_CALLED = new Set(['driver:delete', 'driver:rename']);

/** The environment for an actor of `role`: NODE_OPTIONS with its V8 heap flags added. */
export function withHeapFlags(env: NodeJS.ProcessEnv, role: string): NodeJS.ProcessEnv {
  if (!RARELY_CALLED.has(role)) return env;
  return { ...env, NODE_OPTIONS: [env.NODE_OPTIONS, '--max-semi-space-size=1'].filter(Boolean).join(' ') };
}
