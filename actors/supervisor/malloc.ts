// glibc malloc settings for actor processes, passed in their environment (glibc reads them once,
// at start). Chunks are Buffers of up to a few MiB, allocated and freed hundreds of times a
// second. By default glibc serves each from a fresh mmap and returns freed heap tops to the
// kernel, so every chunk's pages fault in again: measured on this 2-core VM, copying 1 MiB into
// a fresh Buffer cost 0.59 ms against 0.06 ms with these settings (WebCrypto's copy of its
// input: 0.72 ms against 0.28 ms). Keeping chunks on the heap and up to 64 MiB of freed memory
// around turns those faults into plain copies.
//
// A GLIBC_TUNABLES the operator set (even to "") is left alone: that is the way to turn this off.
// Other C libraries ignore the variable.

/** Chunks below this come from the heap instead of a mapping of their own. */
const MMAP_THRESHOLD = 4 << 20;
/** Freed memory kept before the heap's top is handed back to the kernel. */
const TRIM_THRESHOLD = 64 << 20;
/**
 * Malloc arenas: the main thread's and one for all others (V8's and libuv's threads). By default
 * each thread that allocates gets an arena of its own, and an idle actor held ~25 MB in four of
 * them; chunks are allocated on the main thread, so the others hardly contend.
 */
const ARENA_MAX = 2;

export const MALLOC_TUNABLES = `glibc.malloc.mmap_threshold=${MMAP_THRESHOLD}:glibc.malloc.trim_threshold=${TRIM_THRESHOLD}:glibc.malloc.arena_max=${ARENA_MAX}`;

/** The environment for an actor process: `env` with the malloc settings unless it has its own. */
export function withMallocTuning(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env.GLIBC_TUNABLES === undefined ? { ...env, GLIBC_TUNABLES: MALLOC_TUNABLES } : env;
}
