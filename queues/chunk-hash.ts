// SHA-256 of a chunk, for the checks of a POST's chunks against the hashes its signed Request
// names: in the http actor, or in the actor that first receives the chunk (see control-plane.ts).
import { createHash, webcrypto } from 'node:crypto';

/**
 * Chunks at least this big are hashed in the thread pool (WebCrypto), off the event loop; smaller
 * ones inline. A thread-pool trip costs more than it spares on this kind of machine (a VM where
 * wake-ups and context switches are dear): with 1 MiB PUTCHUNKS, hashing inline cut the http
 * actor's CPU per request (WebCrypto also copies its input first).
 */
export const POOLED_HASH_MIN = 4 << 20;

export async function sha256(chunk: Uint8Array): Promise<Buffer> {
  if (chunk.length < POOLED_HASH_MIN) return createHash('sha256').update(chunk).digest();
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', chunk));
}

/** True when the chunk's SHA-256 is `expected` (32 bytes). */
export async function hasSha256(chunk: Uint8Array, expected: Uint8Array): Promise<boolean> {
  return expected.length === 32 && (await sha256(chunk)).equals(expected);
}
