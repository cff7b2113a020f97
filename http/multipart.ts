// Reads a control-plane POST: multipart/form-data with a `control-plane` part (the signed Request)
// and an optional `data-plane` part (chunks back to back). busboy directly, not multer: the
// original client sends both parts without a filename, and multer silently drops such file parts.
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { HttpError } from './errors.js';

export interface ControlPlanePost {
  control: Buffer;
  data: Buffer | null;
}

const PARTS = new Set(['control-plane', 'data-plane']);
const CONTROL_PLANE_MAX = 16 << 20;

export function readControlPlanePost(req: IncomingMessage, maxBytes: number): Promise<ControlPlanePost> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(new HttpError(413, `body of ${declared} bytes exceeds limits.max_upload_bytes (${maxBytes})`));
  }
  if (!/^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) {
    return Promise.reject(new HttpError(400, 'expected multipart/form-data with control-plane and data-plane parts'));
  }
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      // latin1 keeps a part sent as a plain field byte-exact when turned back into a Buffer.
      bb = busboy({ headers: req.headers, defCharset: 'latin1', limits: { fileSize: maxBytes, fieldSize: maxBytes, parts: 8 } });
    } catch (err) {
      reject(new HttpError(400, `bad multipart body: ${(err as Error).message}`));
      return;
    }
    const parts = new Map<string, Buffer>();
    let total = 0;
    let failed: HttpError | null = null;
    const fail = (e: HttpError) => {
      if (failed) return;
      failed = e;
      req.unpipe(bb);
      req.resume(); // drain the rest so the connection can carry the answer
      reject(e);
    };
    const keep = (name: string, value: Buffer) => {
      if (!PARTS.has(name)) return;
      if (parts.has(name)) return fail(new HttpError(400, `duplicate ${name} part`));
      parts.set(name, value);
    };
    bb.on('file', (name, stream) => {
      const bufs: Buffer[] = [];
      stream.on('data', (d: Buffer) => {
        if (PARTS.has(name)) bufs.push(d);
      });
      stream.on('limit', () => fail(new HttpError(413, `part ${name} exceeds limits.max_upload_bytes (${maxBytes})`)));
      stream.on('end', () => { if (!failed) keep(name, Buffer.concat(bufs)); });
    });
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new HttpError(413, `field ${name} exceeds the size limit`));
      keep(name, Buffer.from(value, 'latin1'));
    });
    bb.on('partsLimit', () => fail(new HttpError(400, 'too many multipart parts')));
    bb.on('error', (err: Error) => fail(new HttpError(400, `bad multipart body: ${err.message}`)));
    bb.on('close', () => {
      if (failed) return;
      const control = parts.get('control-plane');
      if (!control || control.length === 0) return fail(new HttpError(400, 'missing control-plane part'));
      if (control.length > CONTROL_PLANE_MAX) return fail(new HttpError(413, 'control-plane part too large'));
      resolve({ control, data: parts.get('data-plane') ?? null });
    });
    // Count the raw body, not only file parts: plain fields and chunked uploads count too.
    req.on('data', (d: Buffer) => {
      total += d.length;
      if (total > maxBytes) fail(new HttpError(413, `body exceeds limits.max_upload_bytes (${maxBytes})`));
    });
    req.on('aborted', () => fail(new HttpError(400, 'client aborted the upload')));
    req.pipe(bb);
  });
}
