// Calls exactly one driver method for one mode, with the seeds' arguments, and normalizes what
// comes back into {rc, chunk?, value?}. Drivers return 0 or a negative errno (Syndicate's
// convention); serialize/deserialize return bytes (or a negative errno).
import { DriverRequestCodec, type DriverRequest } from '../proto/messages.js';
import { METHOD_OF_MODE, type DriverMode } from '../queues/names.js';
import { timeToAnswer, type CallResult, type IncomingCall } from '../queues/ask.js';
import { ChunkSink, setCallDeadline, setChunkSha256 } from './helpers.js';
import { Errno, negativeErrnoOf } from './errno.js';

export type DriverFunction = (...args: unknown[]) => unknown;

/** A driver method threw: the call fails with -EIO and the actor is recycled. */
export class DriverThrew extends Error {
  override name = 'DriverThrew';
}

/** A driver call outlived its deadline: the call fails with -ETIMEDOUT and the actor is recycled. */
export class DriverHung extends Error {
  override name = 'DriverHung';
}

function rcOf(v: unknown, method: string): CallResult {
  if (v === undefined || v === null || v === true) return { rc: 0 };
  if (typeof v === 'number' && Number.isInteger(v) && v <= 0) return { rc: v };
  return { rc: -Errno.EIO, error: `${method} returned ${String(v).slice(0, 40)}; expected 0 or a negative errno` };
}

function bytesOf(v: unknown, method: string): CallResult {
  if (Buffer.isBuffer(v)) return { rc: 0, chunk: v };
  if (v instanceof Uint8Array) return { rc: 0, chunk: Buffer.from(v.buffer, v.byteOffset, v.byteLength) };
  if (typeof v === 'string') return { rc: 0, chunk: Buffer.from(v) };
  if (typeof v === 'number') return rcOf(v, method);
  return { rc: -Errno.EIO, error: `${method} returned ${typeof v}; expected bytes or a negative errno` };
}

/** Runs one call against the driver method of `mode`. Throws DriverThrew / DriverHung. */
export async function callDriver(
  fn: DriverFunction, mode: DriverMode, call: IncomingCall, config: unknown, secrets: unknown, method = METHOD_OF_MODE[mode],
): Promise<CallResult> {
  const request: DriverRequest = DriverRequestCodec.decode(call.request);
  // A POST's shared block_vec: the same frozen array for each of its calls (ask.ts says why).
  if (call.blockVec) request.block_vec = call.blockVec.ids as bigint[];
  const chunk = call.chunk ?? Buffer.alloc(0);
  const budget = timeToAnswer(call.deadline);
  // The driver learns a deadline a little before this chassis gives up on it, so that a driver
  // that stops retrying there still has its answer counted (and keeps its actor).
  setCallDeadline(request, Math.floor(Date.now() + budget - Math.min(200, budget / 10)));
  if (call.verifiedSha256 && call.chunk) setChunkSha256(request, call.verifiedSha256);
  const run = async (): Promise<CallResult> => {
    switch (mode) {
      case 'read': {
        const sink = new ChunkSink();
        const rc = rcOf(await fn(request, sink, config, secrets), method);
        if (rc.rc !== 0) return rc;
        try {
          return { rc: 0, chunk: await sink.collect() };
        } catch (err) {
          return { rc: negativeErrnoOf(err), error: `read_chunk output: ${(err as Error).message}` };
        }
      }
      case 'write':
        return rcOf(await fn(request, chunk, config, secrets), method);
      case 'delete':
        return rcOf(await fn(request, config, secrets), method);
      case 'rename':
        return rcOf(await fn(request, call.args?.[0] ?? request.path, call.args?.[1] ?? request.new_path ?? '', config, secrets), method);
      case 'serialize':
      case 'deserialize':
        return bytesOf(await fn(request, chunk, config, secrets), method);
      case 'cdn_url': {
        const v = await fn(request, call.args?.[0] ?? '', config, secrets);
        if (typeof v === 'string' && v !== '') return { rc: 0, value: v };
        return typeof v === 'number' ? rcOf(v, method) : { rc: -Errno.ENODATA, error: `${method} gave no URL` };
      }
      case 'refresh':
        return rcOf(await fn(request, config, secrets), method);
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DriverHung(`${method} did not finish within its deadline`)), budget);
  });
  try {
    return await Promise.race([run(), hung]);
  } catch (err) {
    if (err instanceof DriverHung) throw err;
    throw new DriverThrew(`${method} threw: ${(err as Error)?.message ?? String(err)}`);
  } finally {
    clearTimeout(timer);
  }
}
