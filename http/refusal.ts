// Answering a request before its body has been read: the answer goes out at once with
// `Connection: close`, and the connection is closed after it instead of reading (maybe hundreds of
// MiB of) the rest. Closing a socket with unread bytes makes the kernel send a reset, which can
// destroy the answer on its way to the client; so, as web servers do ("lingering close"), the
// write side is shut first and what still arrives is discarded for at most LINGER_MS.
import type { Context } from 'koa';
import type { Socket } from 'node:net';

export const LINGER_MS = 2000;

interface LingeringSocket extends Socket {
  /** Node's http server calls it once an answer with `Connection: close` has been written. */
  destroySoon(): void;
}

/** Makes the answer of ctx the connection's last, closed after it without reading the rest of the body. */
export function closeAfterAnswer(ctx: Context): void {
  const { req } = ctx;
  if (req.complete) return; // the whole body was read: the connection may be reused
  ctx.set('Connection', 'close');
  const socket = req.socket as LingeringSocket | null; // null once the connection is gone
  if (typeof socket?.destroySoon !== 'function') return;
  socket.destroySoon = () => {
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    // What arrives meanwhile reaches the request through the HTTP parser: let it drain.
    req.removeAllListeners('data');
    req.on('data', () => {});
    req.on('error', () => {});
    req.resume();
  };
}
