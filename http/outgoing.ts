// HTTP requests a gateway makes to its peers (a UG to the RGs and AGs it reads from and writes
// to), on node:http(s) with keep-alive connections. A request body goes out as the pieces it is
// made of, never joined; a response body lands in one Buffer sized by its Content-Length. fetch
// (undici) copied each POST body into a web stream and each GET body into an ArrayBuffer: with
// the joins around it, a 1 MiB block cost the UG four copies and ~10 ms of CPU per MiB written.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface OutgoingRequest {
  method: 'GET' | 'POST';
  headers?: Record<string, string | number>;
  /** The body as the pieces it is made of, written in order (Content-Length is their sum). */
  body?: readonly Uint8Array[];
  /** The whole exchange, connect to last byte, or an error. */
  timeoutMs?: number;
  /** A longer body is refused (the request fails) instead of being buffered. */
  maxBodyBytes?: number;
}

/** A failed exchange (refused connection, timeout, cut body), with the reason in its message. */
export class ExchangeError extends Error {
  override name = 'ExchangeError';
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

const DEFAULT_MAX_BODY = 1 << 30;

const NO_ANSWER = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/**
 * The peer took the request but cut the connection or did not answer in time: what it did is not
 * known, so the client should try again later (a peer refusing early, its Redis failing over,
 * behind a load balancer often looks like a cut connection). A refused connection is not one:
 * nobody listens there.
 */
export function isNoAnswer(err: unknown): boolean {
  return err instanceof ExchangeError && NO_ANSWER.has(err.code ?? '');
}

function failure(err: NodeJS.ErrnoException, timeoutMs: number | undefined): ExchangeError {
  if (err instanceof ExchangeError) return err;
  if (err.name === 'AbortError') return new ExchangeError(`no answer within ${timeoutMs} ms`, 'ETIMEDOUT');
  return new ExchangeError(err.message, err.code);
}

function readBody(res: IncomingMessage, maxBytes: number, timeoutMs: number | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(res.headers['content-length']);
    if (declared > maxBytes) {
      res.destroy();
      return reject(new ExchangeError(`the answer of ${declared} bytes is over ${maxBytes}`));
    }
    // One copy: socket pieces straight into a Buffer of the announced size.
    const whole = Number.isSafeInteger(declared) && declared >= 0 ? Buffer.allocUnsafe(declared) : null;
    const pieces: Buffer[] = [];
    let got = 0;
    res.on('data', (d: Buffer) => {
      if (whole) {
        if (got + d.length > whole.length) return res.destroy(new ExchangeError('the answer is longer than its Content-Length'));
        d.copy(whole, got);
      } else {
        if (got + d.length > maxBytes) return res.destroy(new ExchangeError(`the answer is over ${maxBytes} bytes`));
        pieces.push(d);
      }
      got += d.length;
    });
    res.once('end', () => {
      if (whole && got !== whole.length) return reject(new ExchangeError(`the answer ended after ${got} of ${whole.length} bytes`));
      resolve(whole ?? (pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, got)));
    });
    res.once('error', (err) => reject(failure(err, timeoutMs)));
    res.once('aborted', () => reject(new ExchangeError('the connection closed in the middle of the answer')));
  });
}

function once(url: URL, o: OutgoingRequest, signal: AbortSignal | undefined): Promise<{ exchange?: Exchange; staleSocket?: boolean; error?: Error }> {
  return new Promise((resolve) => {
    const length = (o.body ?? []).reduce((n, p) => n + p.byteLength, 0);
    const headers = { ...o.headers, ...(o.body ? { 'Content-Length': length } : {}) };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method: o.method, headers, ...(signal ? { signal } : {}) }, (res) => {
      readBody(res, o.maxBodyBytes ?? DEFAULT_MAX_BODY, o.timeoutMs).then(
        (body) => resolve({ exchange: { status: res.statusCode ?? 0, headers: res.headers, body } }),
        (error: Error) => resolve({ error }),
      );
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive connection the server closed just before we wrote: nothing reached it.
      const staleSocket = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      resolve({ staleSocket, error: failure(err, o.timeoutMs) });
    });
    if (!o.body) return void req.end();
    req.cork();
    for (const piece of o.body) req.write(piece);
    req.end();
  });
}

/** One request and its whole answer, any status; throws ExchangeError when there is no answer. */
export async function exchange(url: string | URL, o: OutgoingRequest): Promise<Exchange> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const signal = o.timeoutMs ? AbortSignal.timeout(o.timeoutMs) : undefined;
  let r = await once(target, o, signal);
  if (r.staleSocket) r = await once(target, o, signal); // once, on a fresh connection
  if (r.exchange) return r.exchange;
  throw r.error!;
}
