// What a Redis failover test needs: a volume whose replica gateway is split over two process trees
// (http + cache on one "host", the driver actors on another) and a user gateway writing to it,
// a write load on the UG that records every answer (a request past its deadline counts as a
// hang), and the check that every acknowledged file reads back byte for byte.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { RedisClient } from '../../queues/redis.js';
import {
  cleanup, DISK_DRIVER_JS, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, writeDriver,
  type GatewayFolder, type RunningGateway,
} from './gateway.js';
import { patternBytes, UgClient } from './ug.js';

export const FAILOVER_LIMITS = { call_timeout_ms: 5000, request_timeout_ms: 10_000, max_upload_bytes: 16 << 20 };
/** An answer may take the request deadline plus connection set-up and scheduling on a busy machine. */
export const ANSWER_WITHIN_MS = FAILOVER_LIMITS.request_timeout_ms + 5000;

export interface SplitVolume {
  front: GatewayFolder;
  back: GatewayFolder;
  ug: GatewayFolder;
  procs: RunningGateway[];
  client: UgClient;
  output(): string;
  stop(): Promise<void>;
}

/** An RG as "http,cache" and "driver" process trees with separate folders, and a UG writing to it. */
export async function startSplitVolume(redis: RedisClient): Promise<SplitVolume> {
  const volumeId = BigInt(randomBytes(3).readUIntBE(0, 3)) + 10_000n;
  const ugId = BigInt(randomBytes(3).readUIntBE(0, 3)) + 100n;
  const common = { volumeId, ugId, blockSize: 65536, config: { limits: FAILOVER_LIMITS } };
  const front = await makeGatewayFolder(common);
  const back = await makeGatewayFolder({ sameGatewayAs: front, noDriverFolder: true, config: { limits: FAILOVER_LIMITS } });
  writeDriver(front.dir, `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`, { STORAGE_DIR: back.storageDir });
  const ug = await makeGatewayFolder({ ...common, type: 'UG', peers: [front], driverConfig: {} });
  const procs: RunningGateway[] = [];
  const output = () => procs.map((p) => p.output()).join('\n');
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop()));
    cleanup([front.dir, back.dir, ug.dir]);
  };
  const host = (dir: string) => ({ env: { SGW_SHM_DIR: join(dir, 'shm') } });
  try {
    procs.push(startGatewayProcess(front.configFile, 'http,cache', front.dir, host(front.dir)));
    procs.push(startGatewayProcess(back.configFile, 'driver', back.dir, host(back.dir)));
    await waitForGateway(front, redis);
    procs.push(startGatewayProcess(ug.configFile, undefined, ug.dir, host(ug.dir)));
    await waitForGateway(ug, redis, []);
  } catch (err) {
    const out = output();
    await stop();
    throw new Error(`${(err as Error).message}\n--- gateway output ---\n${out}`);
  }
  return { front, back, ug, procs, client: new UgClient(ug.url), output, stop };
}

export interface Answer {
  path: string;
  status: number;
  retryAfter: boolean;
  body: string;
  started: number;
  ms: number;
}

/**
 * Writes small files through the UG from a few workers until stopped. Every answer is kept;
 * a request unanswered after ANSWER_WITHIN_MS is recorded with status 0 (a hang).
 */
export class WriteLoad {
  readonly answers: Answer[] = [];
  /** Files the UG acknowledged (201), by path. */
  readonly acknowledged = new Map<string, Buffer>();
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(private readonly client: UgClient, private readonly prefix: string, private readonly workerCount = 3) {}

  start(): void {
    this.running = true;
    this.workers = Array.from({ length: this.workerCount }, (_, w) => this.work(w));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async work(w: number): Promise<void> {
    for (let n = 0; this.running; n++) {
      const path = `${this.prefix}/w${w}/f${n}.bin`;
      const bytes = patternBytes(1000 + ((n * 7919 + w * 104729) % 150_000), n * 31 + w + 1);
      const started = Date.now();
      let answer: Answer;
      try {
        const res = await fetch(`${this.client.url}/FILES${path}`, {
          method: 'PUT', body: bytes as BodyInit, headers: { Authorization: `Bearer ${this.client.token}` }, signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
        });
        const body = await res.text();
        answer = { path, status: res.status, retryAfter: res.headers.has('retry-after'), body: body.slice(0, 300), started, ms: Date.now() - started };
      } catch (err) {
        const hung = (err as Error).name === 'TimeoutError';
        answer = { path, status: hung ? 0 : -1, retryAfter: false, body: (err as Error).message, started, ms: Date.now() - started };
      }
      this.answers.push(answer);
      if (answer.status === 201) this.acknowledged.set(path, bytes);
      // A refused write is retried after a pause, as a client told Retry-After would.
      else await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Waits for a write that started after `since` to be acknowledged; resolves with it. */
  resumedAfter(since: number, timeoutMs: number): Promise<Answer> {
    return waitFor(`a write acknowledged after ${new Date(since).toISOString()}`, async () => this.answers.find((a) => a.started > since && a.status === 201), timeoutMs);
  }

  /** Statuses counted, e.g. {"201": 40, "503": 3}. */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.answers) out[a.status] = (out[a.status] ?? 0) + 1;
    return out;
  }
}

/**
 * Every answer was either an acknowledgement or a 503 with Retry-After (never a hang, a 5xx
 * that is not "try again", or a dropped connection), and every acknowledged file reads back
 * byte for byte.
 */
export async function checkLoadOutcome(t: ExecutionContext, load: WriteLoad, client: UgClient, output?: () => string): Promise<void> {
  t.log('answers:', JSON.stringify(load.summary()));
  if (output) t.log('queue workers replaced after idling with jobs waiting:', output().split('\n').filter((l) => l.includes('stopped taking jobs while jobs waited')).length);
  const bad = load.answers.filter((a) => a.status !== 201 && !(a.status === 503 && a.retryAfter));
  // What the gateways logged as errors explains a bad answer.
  if (bad.length > 0 && output) t.log(output().split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(-20).join('\n'));
  t.deepEqual(bad.map((a) => `${a.status} after ${a.ms} ms: ${a.body}`), [], 'only acknowledgements and 503 + Retry-After');
  t.true(load.acknowledged.size > 0, 'some writes were acknowledged');
  const wrong: string[] = [];
  for (const [path, bytes] of load.acknowledged) {
    const got = await client.get(path);
    if (got.status !== 200 || !got.body.equals(bytes)) wrong.push(`${path}: ${got.status} ${got.status === 200 ? `${got.body.length} bytes` : got.body.toString().slice(0, 200)}`);
  }
  if (wrong.length > 0 && output) t.log(output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-30).map((l) => l.slice(0, 400)).join('\n'));
  t.deepEqual(wrong, [], 'every acknowledged file reads back identical');
}
