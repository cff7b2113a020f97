// Gives memory back once a process goes quiet. V8 grows the young generation (to 2 × 16 MB) while
// the modules load and under load, and shrinks it only in a collection that finds little allocated
// over the last 5 s or so; an idle actor allocates so little that it does not collect for hours,
// and so keeps whatever start-up or its last busy spell grew: measured 14-32 MB of an idle actor's
// 40-60 MB heap. So once the process has been quiet for a check (2 s), a full collection (~10 ms
// on an idle actor's heap). That one still counts the busy spell before it (V8 measures allocation
// from one collection to the next), so another follows after 6 quiet seconds, and one more if
// needed, until the young generation is small; then nothing until the process has been busy
// again. A busy process is never collected by this.
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const CHECK_MS = 2_000;
/** Quiet checks in a row before a collection after the first: V8 looks back about 5 s. */
const QUIET_CHECKS = 3;
/** Collections per quiet spell at most. */
const MAX_TRIES = 3;
/** A check is quiet when the process used less CPU than this share of one core since the last. */
const QUIET_CPU_SHARE = 0.02;
/** A young generation larger than this is worth a collection. */
const SHRINKABLE_BYTES = 4 << 20;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Starts the check (unref'd: it keeps no process alive). */
export function releaseMemoryWhenIdle(): void {
  // The documented way to reach V8's gc() without starting node with --expose-gc: the flag
  // applies to contexts made after it is set.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let cpu = process.cpuUsage();
  let quiet = 0;
  let tries = 0;
  setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    if ((used.user + used.system) / 1000 > CHECK_MS * QUIET_CPU_SHARE) {
      quiet = 0;
      tries = 0;
      return;
    }
    if (++quiet < (tries === 0 ? 1 : QUIET_CHECKS) || tries >= MAX_TRIES || youngGenerationBytes() <= SHRINKABLE_BYTES) return;
    quiet = 0;
    tries++;
    gc();
    cpu = process.cpuUsage(); // its own CPU does not make the process busy
  }, CHECK_MS).unref();
}
