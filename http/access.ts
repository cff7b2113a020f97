// Who may reach an http actor at all: the Host header of every request (a browser page on
// evil.example whose name resolves to 127.0.0.1 must not reach a gateway listening on loopback:
// DNS rebinding), and who may read /NAMESPACE (on a UG the application token, as /FILES; on an RG
// or AG the http.namespace_access setting).
import { isIP } from 'node:net';
import type { Context, Next } from 'koa';
import type { GatewayConfig } from '../proto/config/config.js';
import { requireAdmin } from './admin-auth.js';
import { HttpError } from './errors.js';
import { ugTokenCheck } from './ug-api.js';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** Whether an address to listen on is loopback only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** The host name of a Host header value, lower-case, without port, brackets or a trailing dot. */
export function hostNameOf(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') < 0 ? h.length : h.indexOf(']')) : h.replace(/:\d*$/, '');
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * Refuses (403) requests whose Host names no name of this gateway. Checked when the http actor
 * listens on loopback (where DNS rebinding is the threat), and wherever http.allowed_hosts is set;
 * otherwise any Host passes. Requests without a Host header (HTTP/1.0) pass: browsers always send one.
 */
export function hostCheck(config: GatewayConfig): ((ctx: Context, next: Next) => Promise<void>) | null {
  const listed = config.http.allowed_hosts;
  if (!isLoopback(config.gateway.host) && listed.length === 0) return null;
  // As a Host header writes them: an IPv6 address in brackets.
  const asHost = (name: string) => (isIP(name) === 6 ? `[${name}]` : name);
  const allowed = new Set([...LOOPBACK_NAMES, config.gateway.host, ...listed].map((n) => hostNameOf(asHost(n))));
  return async (ctx, next) => {
    const host = ctx.get('Host');
    if (host !== '' && !allowed.has(hostNameOf(host))) {
      throw new HttpError(403, `Host ${JSON.stringify(host.slice(0, 64))} is not a name of this gateway (http.allowed_hosts)`);
    }
    return next();
  };
}

/** The guard of /NAMESPACE: a UG's token; on an RG or AG, anyone or the admin credential (http.namespace_access). */
export function namespaceGuard(config: GatewayConfig): (ctx: Context, next: Next) => Promise<void> {
  if (config.gateway.type === 'UG') {
    const check = ugTokenCheck(config.ug.token);
    return async (ctx, next) => {
      check(ctx);
      return next();
    };
  }
  if (config.http.namespace_access === 'admin') return requireAdmin(config.admin, 'off');
  return (_ctx, next) => next();
}
