// The frame of the driver-fault tests: a faulty driver whose read_chunk misbehaves for chosen block
// ids, one test per fault that checks the faulty call's answer, that a healthy block is still
// served afterwards, and what became of the read actors. Used for TypeScript and Python drivers.
import test, { type ExecutionContext } from 'ava';
import { formatBlockUrl } from '../../http/data-url.js';
import { liveActors } from './gateway.js';
import type { PerFileGateway } from './gateway-per-file.js';

export interface Answer { status: number; ms: number; retryAfter: string | null; body: string }

export interface FaultCase {
  title: string;
  /** The block whose read triggers the fault. */
  block: bigint;
  /** A block read afterwards, which the driver serves as "block <id>". */
  healthy: bigint;
  check: (t: ExecutionContext, r: Answer) => void | Promise<void>;
}

/**
 * The faulty call was answered, not left hanging: within the request deadline plus what a machine
 * busy with other tests may add (the fault tests use request_timeout_ms 4000). A bound, not a timing.
 */
export function answeredInTime(t: ExecutionContext, r: Answer): void {
  t.true(r.ms < 4000 + 5000, `answered in ${r.ms} ms`);
}

/**
 * A call that outlived its deadline: 504 from the actor's -ETIMEDOUT, or 503 with Retry-After when
 * that answer came later than the http actor's own wait (the actor answers 250 ms before the
 * deadline; a machine busy with other tests can take longer to deliver it).
 */
export function timedOut(t: ExecutionContext, r: Answer): void {
  t.true(r.status === 504 || (r.status === 503 && r.retryAfter !== null), `status ${r.status}: ${r.body}`);
  answeredInTime(t, r);
}

export function faultProbes(gateway: PerFileGateway) {
  const url = (block: bigint) => formatBlockUrl(gateway.f.url, { volume_id: 3n, fs_path: '/f', file_id: 0xabcn, file_version: 1n, block_id: block, block_version: 0n });
  return {
    readActors: () => liveActors(gateway.redis, gateway.f.gatewayKey, 'driver:read'),
    async timedGet(block: bigint): Promise<Answer> {
      const started = Date.now();
      const res = await fetch(url(block));
      return { status: res.status, ms: Date.now() - started, retryAfter: res.headers.get('retry-after'), body: await res.text() };
    },
  };
}

/**
 * One serial test per case: the faulty read's answer, then a healthy read, then `afterwards`
 * (given the read actors alive before the fault) checks what became of the actors.
 */
export function faultTests(gateway: PerFileGateway, cases: FaultCase[], afterwards: (t: ExecutionContext, before: string[]) => Promise<void>): void {
  const probes = faultProbes(gateway);
  for (const { title, block, healthy, check } of cases) {
    test.serial(title, async (t) => {
      const before = await probes.readActors();
      await check(t, await probes.timedGet(block));
      const ok = await probes.timedGet(healthy);
      t.is(ok.status, 200, `a healthy block is still served after the fault (${ok.body})`);
      t.is(ok.body, `block ${healthy}`);
      await afterwards(t, before);
    });
  }
}
