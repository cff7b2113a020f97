// One error-to-status mapping for the whole HTTP surface: handlers throw, this answers.
import type { Context, Next } from 'koa';
import { BadUrlError } from './data-url.js';
import { MessageError } from '../proto/messages.js';
import { NoAnswerError } from '../queues/ask.js';
import { isRedisUnavailable } from '../queues/redis.js';
import { NotReplicatedError } from '../queues/replicas.js';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** Why an authentication or authorization check refused a request: a small fixed set (metric label). */
export const AUTH_REASONS = [
  'unknown_sender', 'bad_signature', 'replay', 'wrong_volume', 'wrong_user', 'missing_caps', 'not_coordinator', 'admin_credential',
] as const;
export type AuthReason = (typeof AUTH_REASONS)[number];

/** A 401/403 that says which check refused, so it can be counted by reason. */
export class AuthRejection extends HttpError {
  constructor(status: 401 | 403, readonly reason: AuthReason, message: string, headers: Record<string, string> = {}) {
    super(status, message, headers);
  }
}

export const RETRY_AFTER_S = '2';

export function unavailable(message: string): HttpError {
  return new HttpError(503, message, { 'Retry-After': RETRY_AFTER_S });
}

/**
 * Whether an error is a client that went away mid-request (reset, closed, aborted upload): part of
 * serving the internet, not a fault of sgw.
 */
export function isClientGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * Outermost middleware: maps thrown errors to a status and a one-line text body. An expected
 * refusal (an HttpError, a bad URL or message, no driver answer) is not logged here: the request
 * line carries its status and, in `ctx.state.reason`, why. Anything else is a fault of sgw or its
 * driver and goes to the app's 'error' handler, which logs it with its stack.
 */
export async function answerErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    let status = 500;
    let message = 'internal error';
    let headers: Record<string, string> = {};
    if (err instanceof HttpError) {
      ({ status, message, headers } = err);
      if (err instanceof AuthRejection) ctx.state.authRejection = err.reason;
    } else if (err instanceof BadUrlError || err instanceof MessageError) [status, message] = [400, err.message];
    else if (err instanceof NoAnswerError || err instanceof NotReplicatedError) [status, message, headers] = [503, err.message, { 'Retry-After': RETRY_AFTER_S }];
    // Redis away or failing over: the request may be sent again shortly, not a server bug.
    else if (isRedisUnavailable(err)) [status, message, headers] = [503, `Redis is unavailable: ${(err as Error).message}`, { 'Retry-After': RETRY_AFTER_S }];
    else ctx.app.emit('error', err, ctx);
    ctx.state.reason = message;
    ctx.status = status;
    ctx.set(headers);
    ctx.type = 'text/plain';
    ctx.body = `${message}\n`;
  }
}
