// An HTTP request body read piece by piece, as its reader asks for it: what arrives beyond a
// small queue pauses the socket, so a body is never held in memory unless its reader keeps it.
// A body that stalls gets 408, one that runs past its limit 413, a client that goes away 400.
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/** Bytes queued ahead of the reader before the socket is paused. */
const QUEUE_BYTES = 256 << 10;

export interface BodySourceOptions {
  /** Most bytes the whole body may have (413 beyond). */
  maxBytes: number;
  /** A wait for the next piece longer than this gets 408. */
  idleTimeoutMs: number;
}

export class BodySource {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: HttpError | null = null;
  private waiter: { resolve(piece: Buffer | null): void; reject(err: Error): void; timer: NodeJS.Timeout } | null = null;
  /** Body bytes received so far. */
  received = 0;

  private readonly onData = (piece: Buffer): void => {
    this.received += piece.length;
    if (this.received > this.opts.maxBytes) {
      this.fail(new HttpError(413, `body exceeds limits.max_upload_bytes (${this.opts.maxBytes})`));
      return;
    }
    if (this.waiter) return this.settle(piece);
    this.queue.push(piece);
    this.queued += piece.length;
    if (this.queued >= QUEUE_BYTES) this.req.pause();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    if (this.waiter) this.settle(null);
  };
  private readonly onGone = (): void => {
    if (!this.ended) this.fail(new HttpError(400, 'the client aborted the upload'));
  };

  constructor(private readonly req: IncomingMessage, private readonly opts: BodySourceOptions) {
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('aborted', this.onGone);
    req.on('error', this.onGone);
    req.on('close', this.onGone);
  }

  /** Whether the whole body has been received (nothing is left on the connection). */
  get complete(): boolean {
    return this.ended && this.queue.length === 0;
  }

  /** The next piece of the body, or null at its end; rejects with an HttpError. */
  next(): Promise<Buffer | null> {
    if (this.failure) return Promise.reject(this.failure);
    const piece = this.queue.shift();
    if (piece) {
      this.queued -= piece.length;
      if (this.queued < QUEUE_BYTES && this.req.isPaused()) this.req.resume();
      return Promise.resolve(piece);
    }
    if (this.ended) return Promise.resolve(null);
    if (this.req.isPaused()) this.req.resume();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new HttpError(408, `the body stalled for ${this.opts.idleTimeoutMs} ms (limits.body_idle_timeout_ms)`));
      }, this.opts.idleTimeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Puts back the unread end of a piece: the next call of next() returns it first. */
  unshift(piece: Buffer): void {
    if (piece.length === 0) return;
    this.queue.unshift(piece);
    this.queued += piece.length;
  }

  /** Stops the body with an error: the pending and every later next() rejects with it. */
  fail(err: HttpError): void {
    if (this.failure) return;
    this.failure = err;
    this.queue.length = 0;
    this.queued = 0;
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  /** Detaches from the request, leaving the rest of the body unread (see refusal.ts). */
  detach(): void {
    this.req.pause();
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('aborted', this.onGone);
    this.req.off('error', this.onGone);
    this.req.off('close', this.onGone);
    if (this.waiter) clearTimeout(this.waiter.timer);
  }

  private settle(piece: Buffer | null): void {
    const w = this.waiter!;
    this.waiter = null;
    clearTimeout(w.timer);
    w.resolve(piece);
  }
}
