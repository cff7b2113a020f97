// The built-in user gateway (UG) CDN driver: every manifest and block URL the UG is about to GET
// is rewritten to go through a CDN, the way Syndicate's Akamai driver did:
//   http://rg.example:8080/DATA/1/a.txt.F1.3/0.5  →  http://{CDN_PREFIX}/rg.example:8080/DATA/1/a.txt.F1.3/0.5
// The CDN fetches the original from the host:port in its path. Copy this folder to start a UG
// driver: the folder works as it is, wherever it is copied.
import { log_error, type DriverConfig, type DriverRequest } from 'sgw';

/** CDN_PREFIX: the CDN's host (and port), e.g. "cdn.example.net" or "127.0.0.1:9000". */
function cdnHost(config: DriverConfig): string | null {
  const prefix = config.CDN_PREFIX;
  if (typeof prefix !== 'string' || prefix === '') return null;
  // Accept "http://host:port/" as well as "host:port": only the host part is used.
  return prefix.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/+$/, '');
}

export function driver_init(config: DriverConfig): boolean {
  if (cdnHost(config) === null) {
    log_error('cdn driver: config.json must set CDN_PREFIX (the CDN host, e.g. "cdn.example.net")');
    return false;
  }
  return true;
}

/** Returns the URL to fetch instead; nothing (undefined) makes that read fail with a clear error. */
export function cdn_url(_request: DriverRequest, syndicate_url: string, config: DriverConfig): string | undefined {
  const host = cdnHost(config);
  let url: URL;
  try {
    url = new URL(syndicate_url);
  } catch {
    log_error('cdn driver: not a URL: %s', syndicate_url);
    return undefined;
  }
  if (host === null) return undefined;
  return `${url.protocol}//${host}/${url.host}${url.pathname}${url.search}`;
}
