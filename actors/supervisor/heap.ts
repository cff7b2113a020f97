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
 * ~15 MB less RSS per actor).
 */
const RARELY_CALLED = new Set(['driver:delete', 'driver:rename']);

/**
 * Actors that hold chunks on their way to clients: 4 MB semi-spaces. A chunk's memory is freed
 * when a collection finds its Buffer dead; with V8's 16 MB a scavenge came every several hundred
 * 1 MiB answers, and the RG's http actor reached 265 MiB reading a 1 GiB file through a UG
 * (247 MiB with 4 MB, and the UG's 222 → 210 MiB), at no measurable cost per 4 KiB or 64 KiB
 * cache hit (25.1-26.1 vs 25.2-26.3 µs, alternated). Capped at 1 MB, a 4 KiB hit cost ~10% more.
 */
const CHUNK_HOLDERS = new Set(['http', 'cache']);

/** The environment for an actor of `role`: NODE_OPTIONS with its V8 heap flags added. */
export function withHeapFlags(env: NodeJS.ProcessEnv, role: string): NodeJS.ProcessEnv {
  const semiSpaceMb = RARELY_CALLED.has(role) ? 1 : CHUNK_HOLDERS.has(role) ? 4 : 0;
  if (semiSpaceMb === 0) return env;
  return { ...env, NODE_OPTIONS: [env.NODE_OPTIONS, `--max-semi-space-size=${semiSpaceMb}`].filter(Boolean).join(' ') };
}
