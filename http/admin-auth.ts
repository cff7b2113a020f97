// The admin credential that guards the operator surfaces (dashboard, metrics). Compared in
// constant time; a bearer token or HTTP basic auth (what a browser offers), either may be set.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { AuthRejection, HttpError } from './errors.js';

export interface AdminCredential {
  /** `Authorization: Bearer <token>`. */
  token: string | null;
  /** `Authorization: Basic ...` user and password. */
  user: string | null;
  password: string | null;
  /** The dashboard may retry, clean and remove jobs (default: read-only). */
  allow_writes: boolean;
}

export function credentialConfigured(c: AdminCredential): boolean {
  return c.token !== null || (c.user !== null && c.password !== null);
}

/** Hashing first makes the comparison constant-time whatever the lengths. */
function same(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** Does this Authorization header carry the credential? */
export function authorizes(c: AdminCredential, header: string | undefined): boolean {
  if (!header) return false;
  const space = header.indexOf(' ');
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && c.token !== null) return same(value, c.token);
  if (scheme === 'basic' && c.user !== null && c.password !== null) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    // Evaluate both halves so a wrong user costs the same time as a wrong password.
    const userOk = same(decoded.slice(0, colon), c.user);
    const passOk = same(decoded.slice(colon + 1), c.password);
    return userOk && passOk;
  }
  return false;
}

/**
 * Guards an operator surface. `whenUnset`: 'off' hides the surface (404) until a credential is
 * configured (the dashboard); 'open' serves it to anyone until then (metrics, like most exporters).
 */
export function requireAdmin(c: AdminCredential, whenUnset: 'off' | 'open') {
  const configured = credentialConfigured(c);
  return async (ctx: Context, next: Next): Promise<void> => {
    if (!configured) {
      if (whenUnset === 'off') throw new HttpError(404, 'the admin surface is off: configure admin.token or admin.user/password');
      return next();
    }
    if (!authorizes(c, ctx.get('Authorization') || undefined)) {
      const challenge: Record<string, string> = c.user !== null ? { 'WWW-Authenticate': 'Basic realm="sgw admin", charset="UTF-8"' } : { 'WWW-Authenticate': 'Bearer realm="sgw admin"' };
      throw new AuthRejection(401, 'admin_credential', 'admin credential required', challenge);
    }
    return next();
  };
}
