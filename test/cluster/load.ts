// Load for the cluster scenarios: workers that write a file through the UG (signed PUTCHUNKS to
// the RG through the load balancer, chunks up to 128 KiB) and read back one acknowledged earlier
// (GETs through the load balancer, or the UG's cache). Every answer is kept; one not answered
// within ANSWER_WITHIN_MS counts as a hang, a 200 with other bytes as a wrong answer.
import type { ExecutionContext } from 'ava';
import { waitFor } from '../support/gateway.js';
import { patternBytes, type UgClient } from '../support/ug.js';
import { LIMITS } from './topology.js';

/** The request deadline, plus connection set-up and scheduling on a busy machine. */
export const ANSWER_WITHIN_MS = LIMITS.request_timeout_ms + 5000;

export interface LoadAnswer {
  kind: 'PUT' | 'GET';
  path: string;
  /** 0: no answer within ANSWER_WITHIN_MS; -1: the connection failed before an answer. */
  status: number;
  wrong: boolean;
  /** The answer began but its body was cut short (a read failing after its first block was sent). */
  cut: boolean;
  retryAfter: boolean;
  body: string;
  started: number;
  ms: number;
}

export class ClusterLoad {
  readonly answers: LoadAnswer[] = [];
  readonly acknowledged = new Map<string, Buffer>();
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(private readonly client: UgClient, private readonly prefix: string, private readonly workerCount = 3) {}

  start(): this {
    this.running = true;
    this.workers = Array.from({ length: this.workerCount }, (_, w) => this.work(w));
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async request(kind: 'PUT' | 'GET', path: string, body?: Buffer): Promise<LoadAnswer> {
    const started = Date.now();
    try {
      const res = await fetch(`${this.client.url}/FILES${path}`, {
        method: kind, headers: { Authorization: `Bearer ${this.client.token}` },
        ...(body ? { body: body as BodyInit } : {}), signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
      });
      let got: Buffer;
      try {
        got = Buffer.from(await res.arrayBuffer());
      } catch (err) {
        return { kind, path, status: res.status, wrong: false, cut: true, retryAfter: false, body: (err as Error).message, started, ms: Date.now() - started };
      }
      const expected = kind === 'GET' ? this.acknowledged.get(path) : undefined;
      return {
        kind, path, status: res.status, cut: false, wrong: res.status === 200 && !!expected && !got.equals(expected),
        retryAfter: res.headers.has('retry-after'), body: res.status >= 300 ? got.toString().slice(0, 300) : '', started, ms: Date.now() - started,
      };
    } catch (err) {
      const hung = (err as Error).name === 'TimeoutError';
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = `${(err as Error).message}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''}`;
      return { kind, path, status: hung ? 0 : -1, wrong: false, cut: false, retryAfter: false, body: why, started, ms: Date.now() - started };
    }
  }

  private async work(w: number): Promise<void> {
    for (let n = 0; this.running; n++) {
      const path = `${this.prefix}/w${w}/f${n}.bin`;
      const bytes = patternBytes(1000 + ((n * 7919 + w * 104_729) % 300_000), n * 31 + w + 1);
      const put = await this.request('PUT', path, bytes);
      this.answers.push(put);
      if (put.status === 201) this.acknowledged.set(path, bytes);
      const done = [...this.acknowledged.keys()];
      if (done.length > 0) this.answers.push(await this.request('GET', done[(n * 13 + w) % done.length]!));
      // A refused request is retried after a pause, as a client told Retry-After would.
      if (put.status !== 201) await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Waits until `count` writes that started after `since` were acknowledged. */
  async acknowledgedAfter(since: number, count = 1, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${count} writes acknowledged after ${new Date(since).toISOString()}`, async () => this.answers.filter((a) => a.kind === 'PUT' && a.started > since && a.status === 201).length >= count, timeoutMs)
      .catch((err: Error) => { throw new Error(`${err.message}; answers: ${this.summary()}; last: ${this.answers.slice(-4).map((a) => `${a.kind} ${a.status} ${a.body.slice(0, 200)}`).join(' | ')}`); });
  }

  summary(): string {
    const out: Record<string, number> = {};
    for (const a of this.answers) {
      const k = `${a.kind} ${a.status}${a.cut ? ' cut' : ''}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return JSON.stringify(out);
  }
}

export interface OutcomeRules {
  /** Answers that say "not done, try again" and are acceptable in this scenario (default 503 with Retry-After; a cut body never is). */
  refusals?: (a: LoadAnswer) => boolean;
}

const retryLater = (a: LoadAnswer): boolean => a.status === 503 && a.retryAfter;

/**
 * Every request was answered within its deadline with a success or an allowed refusal, no GET
 * returned other bytes than were acknowledged, and every acknowledged file reads back identical.
 */
export async function checkOutcome(t: ExecutionContext, load: ClusterLoad, client: UgClient, rules: OutcomeRules = {}, output?: () => string): Promise<void> {
  t.log('answers:', load.summary());
  const refusal = rules.refusals ?? retryLater;
  const done = (a: LoadAnswer): boolean => (a.status === 200 || a.status === 201) && !a.cut;
  const bad = load.answers.filter((a) => a.wrong || !(done(a) || refusal(a)));
  if (bad.length > 0 && output) t.log(output().split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(-20).map((l) => l.slice(0, 400)).join('\n'));
  t.deepEqual(bad.map((a) => `${a.kind} ${a.path}: ${a.wrong ? 'WRONG BYTES' : `${a.status}${a.cut ? ' cut short' : ''}`} after ${a.ms} ms: ${a.body.slice(0, 200)}`), [], 'every request answered in time, with success or an allowed refusal');
  t.true(load.acknowledged.size > 0, 'some writes were acknowledged');
  const wrong: string[] = [];
  for (const [path, bytes] of load.acknowledged) {
    let got = await client.get(path);
    // Read-back is not under test for refusals: retry a 503 a few times.
    for (let i = 0; i < 20 && got.status === 503; i++) {
      await new Promise((r) => setTimeout(r, 250));
      got = await client.get(path);
    }
    if (got.status !== 200 || !got.body.equals(bytes)) wrong.push(`${path}: ${got.status} ${got.status === 200 ? `${got.body.length} bytes` : got.body.toString().slice(0, 200)}`);
  }
  t.deepEqual(wrong, [], 'every acknowledged file reads back identical');
}
