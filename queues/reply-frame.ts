// A reply frame, as a serving actor pushes it onto its asker's reply list (ask.ts, serve.ts):
// u32 length of a JSON header, a 32-byte MAC slot (job-mac.ts; zeros from a server without keys),
// the header, then the chunk if any. The MAC covers everything after its slot.
import { MAC_BYTES, type JobMac } from './job-mac.js';
import type { CallResult } from './ask.js';

const HEAD = 4 + MAC_BYTES;

/** Who seals replies: the gateway's MAC keys and the mode served. */
export interface ReplySeal {
  mac: JobMac;
  mode: string;
}

function replyFrame(fields: Record<string, unknown>, chunk: Buffer | undefined, seal: ReplySeal | null): Buffer {
  const header = Buffer.from(JSON.stringify(fields));
  const head = Buffer.alloc(HEAD);
  head.writeUInt32BE(header.length, 0);
  const frame = Buffer.concat(chunk ? [head, header, chunk] : [head, header]);
  if (seal) seal.mac.replyMac(seal.mode, frame.subarray(HEAD)).copy(frame, 4);
  return frame;
}

/** `attempt`: which start of the call's job answers (BullMQ's attemptsStarted; covered by the MAC). */
export function encodeReply(id: string, r: CallResult, seal: ReplySeal | null = null, attempt?: number): Buffer {
  return replyFrame({ id, rc: r.rc, e: r.error, v: r.value, t: r.servedMs, m: r.mismatch ? 1 : undefined, a: attempt }, r.chunk, seal);
}

/** The answer of a worker that cannot read the call's host file: "send the chunk through Redis". */
export function encodeUnreachable(id: string, seal: ReplySeal | null = null, attempt?: number): Buffer {
  return replyFrame({ id, rc: 0, u: 1, a: attempt }, undefined, seal);
}

/** Told by a worker that took the call's job again after another lost it: earlier attempts' answers are stale. */
export function encodeStarted(id: string, attempt: number, seal: ReplySeal | null = null): Buffer {
  return replyFrame({ id, rc: 0, s: attempt }, undefined, seal);
}

export interface DecodedReply {
  id: string;
  result: CallResult;
  unreachable?: true;
  /** The attempt that answered, when the worker said. */
  attempt?: number;
  /** Not an answer: attempt `started` of the call's job began. */
  started?: number;
  /** The MAC slot and the bytes it covers, for JobMac.checkReply. */
  mac: Buffer;
  signed: Buffer;
}

export function decodeReply(frame: Buffer): DecodedReply | null {
  if (frame.length < HEAD) return null;
  const n = frame.readUInt32BE(0);
  if (HEAD + n > frame.length) return null;
  try {
    const h = JSON.parse(frame.subarray(HEAD, HEAD + n).toString()) as { id: string; rc: number; e?: string; v?: string; t?: number; u?: number; m?: number; a?: number; s?: number };
    if (typeof h.id !== 'string' || typeof h.rc !== 'number') return null;
    const raw = { mac: frame.subarray(4, HEAD), signed: frame.subarray(HEAD), ...(typeof h.a === 'number' ? { attempt: h.a } : {}) };
    if (typeof h.s === 'number') return { id: h.id, result: { rc: h.rc }, started: h.s, ...raw };
    if (h.u === 1) return { id: h.id, result: { rc: h.rc }, unreachable: true, ...raw };
    const result: CallResult = { rc: h.rc };
    if (frame.length > HEAD + n) result.chunk = frame.subarray(HEAD + n);
    if (h.e !== undefined) result.error = h.e;
    if (h.v !== undefined) result.value = h.v;
    if (typeof h.t === 'number') result.servedMs = h.t;
    if (h.m === 1) result.mismatch = true;
    return { id: h.id, result, ...raw };
  } catch {
    return null;
  }
}
