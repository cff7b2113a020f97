// Per-call abort signals for an S3Client that resolves its middleware stack once per command class
// (`cacheMiddleware`). Resolving it on every send was ~15% of the read actor's CPU per 4 KiB
// cache miss on the development machine (~100 of ~800 µs), but the SDK uses the cached stack only
// for sends without options, so a call's `abortSignal` cannot go the usual way. It rides on the command's input instead (a symbol key, which the SDK's
// serializers ignore), a middleware after signing hands it to the outgoing request, and the
// client's request handler aborts that request with it.
import type { S3Client } from '@aws-sdk/client-s3';

const SIGNAL = Symbol('sgw.s3.callSignal');

interface Signalled {
  [SIGNAL]?: AbortSignal;
}

/** The command input `input`, carrying `signal` to the request it becomes (on a client set up by withCallSignals). */
export function signalled<T extends object>(input: T, signal: AbortSignal): T {
  return Object.assign(input, { [SIGNAL]: signal });
}

/** Makes `client` abort each request with the signal its input carries (see signalled). */
export function withCallSignals(client: S3Client): S3Client {
  client.middlewareStack.add((next, _context) => (args) => {
    const signal = (args.input as Signalled)[SIGNAL];
    // The deserialize step runs after signing, which copies the request: this one is sent as is.
    if (signal && args.request && typeof args.request === 'object') (args.request as Signalled)[SIGNAL] = signal;
    return next(args);
  }, { step: 'deserialize', name: 'sgwCallSignal' });
  const handler = client.config.requestHandler;
  const handle = handler.handle.bind(handler);
  handler.handle = (request, options) => {
    const signal = (request as Signalled)[SIGNAL];
    return handle(request, signal ? { ...options, abortSignal: signal } : options);
  };
  return client;
}
