// Tools of the attack tests (test/attack-*.test.ts, issue 15): POSTs that stream or withhold a
// large body, the RSS of a gateway's whole process tree sampled while an attack runs, /PING
// polled throughout, and the restart count the supervisors keep in Redis.
import type { KeyObject } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { sep } from 'node:path';
import type { RedisClient } from '../../queues/redis.js';
import { childrenOf, memoryOf } from '../../bench/support.js';
import { keys } from '../../queues/names.js';
import { RequestCodec, type Request } from '../../proto/messages.js';
import { signMessage } from '../../proto/signature.js';
import { formatFileId } from '../../http/data-url.js';
import { encodeMultipart, randomNonce, type RequestFields } from '../../http/rg-client.js';
import { walk } from './gateway.js';

export const MiB = 1 << 20;

export interface StreamedAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Body bytes the client had written when the answer came (or when it stopped). */
  sent: number;
}

export interface StreamedPost {
  answer: Promise<StreamedAnswer>;
  /** Body bytes written so far. */
  sent(): number;
  /** Drops the connection. */
  abort(): void;
}

const ZEROS = Buffer.alloc(256 << 10);

export interface StreamingOptions {
  /** Write at most this many body bytes, then wait for the answer (a client withholding the rest). */
  holdAfter?: number;
  headers?: Record<string, string>;
  /** Pace the writes (default: as fast as the connection takes them). */
  bytesPerSecond?: number;
}

/**
 * POSTs `head` and then zero bytes up to `total` (the Content-Length), on a fresh connection,
 * stopping as soon as an answer arrives.
 */
export function streamingPost(url: string, contentType: string, head: Buffer, total: number, opts: StreamingOptions = {}): StreamedPost {
  const { hostname, port } = new URL(url);
  const holdAfter = opts.holdAfter ?? total;
  let sent = 0;
  let answered = false;
  const started = performance.now();
  const req = httpRequest({ hostname, port, path: '/', method: 'POST', agent: false, headers: { ...opts.headers, 'Content-Type': contentType, 'Content-Length': String(total) } });
  const answer = new Promise<StreamedAnswer>((resolve, reject) => {
    req.on('response', (res) => {
      answered = true;
      const at = sent;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('latin1'), sent: at });
        req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', (err) => { if (!answered) reject(err); });
  });
  void (async () => {
    const write = (b: Buffer) => new Promise<void>((resolve) => {
      sent += b.length;
      if (req.write(b)) return resolve();
      const done = () => { req.off('drain', done); req.off('close', done); resolve(); };
      req.on('drain', done);
      req.on('close', done);
    });
    await write(head);
    const limit = Math.min(total, holdAfter);
    while (!answered && !req.destroyed && sent < limit) {
      await write(ZEROS.subarray(0, Math.min(ZEROS.length, limit - sent)));
      const ahead = opts.bytesPerSecond ? (sent / opts.bytesPerSecond) * 1000 - (performance.now() - started) : 0;
      if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
    }
    if (!answered && !req.destroyed && sent >= total) req.end();
  })();
  return {
    answer,
    sent: () => sent,
    abort: () => {
      answer.catch(() => undefined); // dropped on purpose: no answer is expected any more
      req.destroy();
    },
  };
}

/** The multipart head of a POST: the whole control-plane part, then the data-plane part's headers (its bytes follow). */
export function postHead(control: Uint8Array): { head: Buffer; contentType: string; tail: number } {
  const { body, contentType } = encodeMultipart([{ name: 'control-plane', data: control }, { name: 'data-plane', data: new Uint8Array(0) }]);
  const boundary = contentType.slice(contentType.indexOf('boundary=') + 9);
  const tail = `\r\n--${boundary}--\r\n`.length;
  return { head: body.subarray(0, body.length - tail), contentType, tail };
}

/** Pids of a process and all its descendants. */
export function processTree(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]!).map((c) => c.pid));
  return out;
}

/** Total RSS of a process tree in bytes (processes that vanished count nothing). */
export function treeRss(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + (memoryOf(pid)?.rssKb ?? 0) * 1024, 0);
}

/**
 * Samples the total RSS of a process tree (its processes as they are when it starts: listing them
 * runs `ps`, too slow to repeat) until stopped; stop() gives the largest total seen.
 */
export class TreeRssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(root: number, everyMs = 100) {
    const pids = processTree(root);
    const take = () => { this.peak = Math.max(this.peak, pids.reduce((sum, pid) => sum + (memoryOf(pid)?.rssKb ?? 0) * 1024, 0)); };
    take();
    this.timer = setInterval(take, everyMs);
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peak;
  }
}

/** Polls /PING one request after another until stopped; every answer's status and time. */
export class PingPoller {
  readonly answers: { status: number; ms: number }[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(url: string) {
    this.loop = (async () => {
      while (this.running) {
        const started = performance.now();
        let status = 0;
        try {
          const res = await fetch(`${url}/PING`);
          await res.arrayBuffer();
          status = res.status;
        } catch {
          status = 0;
        }
        this.answers.push({ status, ms: performance.now() - started });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  }

  async stop(): Promise<{ status: number; ms: number }[]> {
    this.running = false;
    await this.loop;
    return this.answers;
  }
}

/** Actor restarts counted by the gateway's supervisors, all roles together. */
export async function restarts(redis: RedisClient, gateway: string): Promise<number> {
  const counts = await redis.hgetall(keys.restarts(gateway));
  return Object.values(counts).reduce((n, v) => n + Number(v), 0);
}

/** The value of one unlabelled metric on /metrics. */
export async function metricValue(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** The encoded Request signed with `key`, with a fresh nonce unless given. */
export function signRequest(fields: RequestFields, key: KeyObject): Uint8Array {
  const request: Request = { ...fields, message_nonce: fields.message_nonce ?? randomNonce(), signature: '' };
  return signMessage(request, RequestCodec.encode, key).bytes;
}

/** Files the disk driver holds for a file id under a storage folder. */
export function storedChunks(storageDir: string, fileId: bigint): string[] {
  const hex = formatFileId(fileId);
  return walk(storageDir).filter((p) => p.split(sep).some((s) => s.toUpperCase() === hex));
}
