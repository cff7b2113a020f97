// The data plane of a checked Request, read as it arrives into one buffer per chunk, each of
// exactly its declared size. (One buffer for the whole plane, 8 MiB for a UG's batch, was over
// glibc's mmap threshold: a fresh mapping per request whose every page faulted in as it was
// copied to, a third of the http actor's CPU on a freshly booted VM.) With hashes, each chunk's
// SHA-256 is computed piece by piece as its bytes come and checked as soon as it is complete, so
// a bad chunk stops the reading there.
import { createHash, type Hash } from 'node:crypto';
import { HttpError } from './errors.js';
import type { MultipartReader } from './multipart.js';
import type { DataLayout } from './request-checks.js';

/**
 * Reads the data-plane part's content (the current part of `reader`) into the chunks of `layout`.
 * `hashes[i]`, when given, is the SHA-256 chunk i must have (400 otherwise).
 */
export async function readChunks(reader: MultipartReader, layout: DataLayout, hashes: readonly Uint8Array[] | null): Promise<Buffer[]> {
  const { sizes, total } = layout;
  const chunks = sizes.map((size) => Buffer.allocUnsafe(size));
  let at = 0;
  let blockStart = 0;
  let block = 0;
  let blockEnd = sizes[0] ?? 0;
  let hash: Hash | null = null;
  const finishBlocks = () => {
    // Zero-length chunks end where they start.
    while (block < sizes.length && at === blockEnd) {
      if (hashes) {
        const digest = (hash ?? createHash('sha256')).digest();
        if (!digest.equals(hashes[block]!)) throw new HttpError(400, `block ${block} does not match its hash`);
        hash = null;
      }
      block++;
      blockStart = blockEnd;
      blockEnd += sizes[block] ?? 0;
    }
  };
  finishBlocks();
  await reader.readContent((piece) => {
    if (at + piece.length > total) {
      throw new HttpError(400, `the data plane is longer than its blocks (${total} bytes)`);
    }
    let from = 0;
    while (from < piece.length) {
      const n = Math.min(piece.length - from, blockEnd - at);
      const part = piece.subarray(from, from + n);
      part.copy(chunks[block]!, at - blockStart);
      if (hashes) (hash ??= createHash('sha256')).update(part);
      at += n;
      from += n;
      finishBlocks();
    }
  });
  if (at < total) throw new HttpError(400, `the blocks reach beyond the data plane (they need ${total} bytes, it holds ${at})`);
  return chunks;
}
