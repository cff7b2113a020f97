// autocannon has no type definitions: this wrapper declares the little of it the bench uses and
// measures the rate itself (autocannon stops on its sample tick, so its own duration is coarse).
import { createRequire } from 'node:module';

interface CannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  setupRequest?: (req: CannonRequest, context: Record<string, unknown>) => CannonRequest;
}

interface CannonOptions {
  url: string;
  connections: number;
  duration?: number;
  amount?: number;
  sampleInt?: number;
  timeout?: number;
  requests?: CannonRequest[];
}

interface Histogram {
  p50: number;
  p99: number;
  average: number;
  total: number;
}

interface CannonResult {
  latency: Histogram;
  throughput: Histogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}

interface CannonInstance {
  on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  stop(): void;
}

type Autocannon = (opts: CannonOptions, cb: (err: Error | null, result: CannonResult) => void) => CannonInstance;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface HttpLoad {
  /** 2xx responses per second between the start and the last response. */
  rate: number;
  ok: number;
  failed: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Mean body bytes of a response (a sanity check of what was served). */
  bytesPerResponse: number;
  statuses: Record<string, number>;
}

export interface HttpLoadOptions {
  url: string;
  connections: number;
  /** Hard time limit; the run also stops after `amount` responses when given. */
  seconds: number;
  amount?: number;
  /** Path of the i-th request (default: the URL's own path). */
  path?: (i: number) => string;
}

export function httpLoad(o: HttpLoadOptions): Promise<HttpLoad> {
  let ok = 0;
  let failed = 0;
  let bytes = 0;
  let last = 0;
  let next = 0;
  const pathOf = o.path;
  const requests: CannonRequest[] | undefined = pathOf
    ? [{ method: 'GET', setupRequest: (req) => ({ ...req, path: pathOf(next++) }) }]
    : undefined;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const inst = autocannon({
      url: o.url, connections: o.connections, sampleInt: 100, timeout: 30,
      ...(o.amount ? { amount: o.amount } : { duration: o.seconds }),
      ...(requests ? { requests } : {}),
    }, (err, result) => {
      clearTimeout(cap);
      if (err) return reject(err);
      const seconds = (last - t0) / 1000;
      const statuses: Record<string, number> = {};
      for (const [code, s] of Object.entries(result.statusCodeStats)) statuses[code] = s.count;
      resolve({
        rate: ok / seconds, ok, failed: failed + result.errors, seconds,
        p50: result.latency.p50, p99: result.latency.p99, bytesPerResponse: bytes / Math.max(1, ok + failed), statuses,
      });
    });
    // With `amount`, autocannon ignores `duration`: enforce the time limit here.
    const cap = setTimeout(() => inst.stop(), o.seconds * 1000 + 50);
    inst.on('response', (_client, status, resBytes) => {
      last = performance.now();
      bytes += resBytes;
      if (status >= 200 && status < 300) ok++;
      else failed++;
    });
  });
}
