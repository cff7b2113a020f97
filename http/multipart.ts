// Reads a control-plane POST: multipart/form-data with a `control-plane` part (the signed Request)
// and an optional `data-plane` part (chunks back to back). The body must be held whole anyway
// (every chunk's hash is checked before anything is written), so it is collected under the
// upload limit and split on its boundary with Buffer.indexOf: no per-part copies, no string
// round trips. Parts are matched by name whether or not they carry a filename or a
// Content-Type (the original client sends neither filename; multer would drop such parts).
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

export interface ControlPlanePost {
  control: Buffer;
  data: Buffer | null;
}

const PARTS = new Set(['control-plane', 'data-plane']);
const MAX_PARTS = 8;
const CONTROL_PLANE_MAX = 16 << 20;
const DRAIN_MS = 2000;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const NAME = /^content-disposition:[ \t]*form-data\b[^\r\n]*?;[ \t]*name=(?:"([^"]*)"|([^;\s]+))/im;

function bad(message: string): HttpError {
  return new HttpError(400, `bad multipart body: ${message}`);
}

/** The boundary of a multipart/form-data Content-Type, or an HttpError. */
export function boundaryOf(contentType: string | undefined): string {
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType ?? '')) {
    throw new HttpError(400, 'expected multipart/form-data with control-plane and data-plane parts');
  }
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType!);
  if (!m) throw bad('no boundary in Content-Type');
  return (m[1] ?? m[2])!;
}

/** Splits a whole multipart body into its named parts (the control-plane ones only). */
export function splitMultipart(body: Buffer, boundary: string): Map<string, Buffer> {
  const delimiter = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  const parts = new Map<string, Buffer>();
  let pos = body.indexOf(delimiter);
  if (pos < 0 || (pos > 0 && body.lastIndexOf(CRLF, pos) !== pos - 2)) throw bad('no opening boundary');
  for (let count = 0; ; count++) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // closing "--boundary--"
    if (count >= MAX_PARTS) throw bad('too many parts');
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++; // transport padding
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw bad('boundary not followed by CRLF');
    const headerEnd = body.indexOf(HEADER_END, pos);
    if (headerEnd < 0) throw bad('part headers never end');
    const headers = body.subarray(pos + 2, headerEnd).toString('latin1');
    const contentStart = headerEnd + 4;
    const end = body.indexOf(next, contentStart);
    if (end < 0) throw bad('part is not terminated by a boundary');
    const m = NAME.exec(headers);
    if (!m) throw bad('part without a form-data name');
    const name = (m[1] ?? m[2])!;
    if (PARTS.has(name)) {
      if (parts.has(name)) throw new HttpError(400, `duplicate ${name} part`);
      parts.set(name, body.subarray(contentStart, end));
    }
    pos = end + 2;
  }
}

/**
 * Discards the rest of a refused body (never buffering it), for at most DRAIN_MS, so that the
 * client can read the refusal instead of failing its write with EPIPE when we close.
 */
function refuseAfterDrain(req: IncomingMessage, err: HttpError): Promise<never> {
  return new Promise((_, reject) => {
    const done = () => { clearTimeout(timer); reject(err); };
    const timer = setTimeout(done, DRAIN_MS);
    if (req.readableEnded) return done();
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/** Collects the body under maxBytes (413 beyond it, before it is buffered whole). */
function collectBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    const fail = (e: HttpError) => {
      if (failed) return;
      failed = true;
      chunks.length = 0;
      req.removeListener('data', onData);
      refuseAfterDrain(req, e).catch(reject);
    };
    const onData = (d: Buffer) => {
      total += d.length;
      if (total > maxBytes) return fail(new HttpError(413, `body exceeds limits.max_upload_bytes (${maxBytes})`));
      chunks.push(d);
    };
    req.on('data', onData);
    req.on('end', () => { if (!failed) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)); });
    req.on('aborted', () => fail(new HttpError(400, 'client aborted the upload')));
    req.on('error', (err) => fail(new HttpError(400, `upload failed: ${err.message}`)));
  });
}

export async function readControlPlanePost(req: IncomingMessage, maxBytes: number): Promise<ControlPlanePost> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return refuseAfterDrain(req, new HttpError(413, `body of ${declared} bytes exceeds limits.max_upload_bytes (${maxBytes})`));
  }
  let boundary: string;
  try {
    boundary = boundaryOf(req.headers['content-type']);
  } catch (err) {
    return refuseAfterDrain(req, err as HttpError);
  }
  const parts = splitMultipart(await collectBody(req, maxBytes), boundary);
  const control = parts.get('control-plane');
  if (!control || control.length === 0) throw new HttpError(400, 'missing control-plane part');
  if (control.length > CONTROL_PLANE_MAX) throw new HttpError(413, 'control-plane part too large');
  return { control, data: parts.get('data-plane') ?? null };
}
