// One Python chassis process (drivers/python/chassis.py) running one mode of a driver.py, one
// call at a time, over the pipe protocol on its file descriptors 3 (to it) and 4 (from it).
// Its stdout and stderr are read line by line for the actor's log, so a driver's prints never
// reach the protocol. Anything off-protocol, a death or a missed deadline ends the process.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { timeToAnswer, type CallResult, type IncomingCall } from '../queues/ask.js';
import type { DriverMode } from '../queues/names.js';
import { encodeBytes, encodeInt, FrameError, FrameReader } from './pipe-frames.js';
import { PYTHON_FLAGS, pythonChassisDir, pythonCommand } from './python-runtime.js';

/** What the chassis answered at start: 0 ready, 1 failed, 2 the driver lacks the mode's method. */
export type ChassisStart = 'ready' | 'failed' | 'not-implemented';
const START_ANSWERS: Record<number, ChassisStart> = { 0: 'ready', 1: 'failed', 2: 'not-implemented' };
/** A positive integer where a reply's rc belongs: the driver called crawl(cmd) during the call. */
export const UPCALL_CRAWL = 3;
/** Modes whose reply payload is the method's output bytes, or a text value (crawl: the AG's, reserved). */
const CHUNK_MODES = new Set<string>(['read', 'serialize', 'deserialize']);
const VALUE_MODES = new Set<string>(['cdn_url', 'crawl']);
const MAX_LOG_LINE = 16 * 1024;

/** The chassis process ended during a call (crashed, exited, or was killed). */
export class ChassisDied extends Error {
  override name = 'ChassisDied';
}
/** The chassis wrote something off-protocol; it has been killed. */
export class ChassisDesync extends Error {
  override name = 'ChassisDesync';
}
/** The call outlived its deadline; the chassis has been killed. */
export class ChassisHung extends Error {
  override name = 'ChassisHung';
}

export interface ChassisOptions {
  /** A driver mode, or 'crawl': an AG's next_dataset loop. */
  mode: DriverMode | 'crawl';
  /** The driver method the mode calls (the gateway type decides: read_chunk for an RG, ...). */
  method: string;
  /** The Python 3 interpreter to run (default: pythonCommand()). */
  python?: string;
  config: Buffer;
  secrets: Buffer;
  code: Buffer;
  /** Largest byte string either side may send (a chunk, a request). */
  maxFrameBytes: number;
  /** How long loading the driver and driver_init may take. */
  startTimeoutMs: number;
  /** Extra environment (SYNDICATE_GATEWAY_ID, ...). */
  env: Record<string, string>;
  /** A line the driver printed; rid is the call it was serving, if any. */
  onLine: (stream: 'stdout' | 'stderr', line: string, rid: string | undefined) => void;
  /** Answers the driver's crawl(cmd); without it crawl() gets -ENOSYS. */
  onCrawl?: (cmd: unknown) => Promise<number>;
}

interface Pending {
  call: IncomingCall;
  resolve(r: CallResult): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  rc: number | null;
}

const ENOSYS = 38;
/**
 * Shared block_vecs (queues/ask.ts) the actor remembers having sent to a chassis, which keeps
 * twice as many: a POST's block_vec crosses the pipe once per chassis, not once per call.
 */
export const BLOCK_VECS_SENT = 8;

export class PythonChassis {
  private readonly child: ChildProcess;
  private readonly toChassis: Writable;
  private readonly reader: FrameReader;
  private started: ((s: ChassisStart) => void) | null = null;
  private pending: Pending | null = null;
  /** The call in progress or, between calls, the last one: output read after its reply is still its. */
  private lastRid: string | undefined;
  private upcall: Promise<void> | null = null;
  private exited = false;
  private fault: Error | null = null;
  /** Keys of the block_vecs this chassis holds, oldest first. */
  private readonly vecsSent: string[] = [];
  readonly exit: Promise<void>;

  /** Spawns a chassis and sends it config, secrets and code; resolves with its answer. */
  static async start(opts: ChassisOptions): Promise<{ chassis: PythonChassis; outcome: ChassisStart }> {
    const chassis = new PythonChassis(opts);
    return { chassis, outcome: await chassis.handshake() };
  }

  private constructor(private readonly opts: ChassisOptions) {
    this.reader = new FrameReader(opts.maxFrameBytes);
    this.child = spawn(opts.python ?? pythonCommand(), [...PYTHON_FLAGS, join(pythonChassisDir(), 'chassis.py'), opts.mode], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env, SGW_MAX_FRAME_BYTES: String(opts.maxFrameBytes), SGW_DRIVER_METHOD: opts.method },
    });
    this.exit = new Promise((resolve) => this.child.once('close', () => resolve()));
    this.child.once('error', (err) => {
      const why = `cannot run ${opts.python ?? pythonCommand()}: ${err.message} (install Python 3 or set SGW_PYTHON)`;
      opts.onLine('stderr', why, undefined);
      this.ended(new ChassisDied(why));
    });
    this.child.once('exit', (code, signal) => this.ended(new ChassisDied(`the ${opts.mode} chassis exited (${signal ?? `code ${code}`})`)));
    this.toChassis = this.child.stdio[3] as Writable;
    this.toChassis.on('error', () => {}); // EPIPE after a death: reported through 'exit'
    const fromChassis = this.child.stdio[4] as Readable;
    fromChassis.on('data', (b: Buffer) => this.received(b));
    fromChassis.on('error', () => {});
    this.lines(this.child.stdout!, 'stdout');
    this.lines(this.child.stderr!, 'stderr');
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.exited && this.fault === null;
  }

  private handshake(): Promise<ChassisStart> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.opts.onLine('stderr', `the ${this.opts.mode} chassis did not start within ${this.opts.startTimeoutMs} ms`, undefined);
        this.kill();
      }, this.opts.startTimeoutMs);
      this.started = (s) => {
        clearTimeout(timer);
        this.started = null;
        resolve(s);
      };
      this.write([...encodeBytes(this.opts.config), ...encodeBytes(this.opts.secrets), ...encodeBytes(this.opts.code)]);
    });
  }

  /** Runs one call; rejects with ChassisDied, ChassisDesync or ChassisHung (the process is then gone). */
  call(call: IncomingCall): Promise<CallResult> {
    if (this.pending) return Promise.reject(new Error('a chassis serves one call at a time'));
    if (!this.alive) return Promise.reject(this.fault ?? new ChassisDied(`the ${this.opts.mode} chassis is not running`));
    return new Promise<CallResult>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new ChassisHung(`${this.opts.mode} call did not finish within its deadline; chassis killed`)), timeToAnswer(call.deadline));
      this.pending = { call, resolve, reject, timer, rc: null };
      this.lastRid = call.requestId;
      const args = call.args ?? [];
      this.write([
        ...encodeBytes(call.request), ...encodeBytes(call.chunk ?? Buffer.alloc(0)), encodeInt(args.length),
        ...args.flatMap((a) => encodeBytes(Buffer.from(a, 'utf8'))),
        ...this.blockVecFrames(call),
      ]);
    });
  }

  /** The call's shared block_vec: its key, and its bytes unless this chassis already holds them. */
  private blockVecFrames(call: IncomingCall): Buffer[] {
    const vec = call.blockVec;
    if (!vec) return [...encodeBytes(Buffer.alloc(0)), ...encodeBytes(Buffer.alloc(0))];
    const key = Buffer.from(vec.key, 'utf8');
    if (this.vecsSent.includes(vec.key)) return [...encodeBytes(key), ...encodeBytes(Buffer.alloc(0))];
    this.vecsSent.push(vec.key);
    if (this.vecsSent.length > BLOCK_VECS_SENT) this.vecsSent.shift();
    return [...encodeBytes(key), ...encodeBytes(vec.bytes)];
  }

  /** Ends the chassis gracefully (EOF: it calls driver_shutdown), killing it after graceMs. */
  async close(graceMs: number): Promise<void> {
    this.toChassis.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exit;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private write(buffers: Buffer[]): void {
    if (this.exited) return;
    this.toChassis.cork(); // one writev for a message's frames, not a syscall per frame
    for (const b of buffers) this.toChassis.write(b);
    this.toChassis.uncork();
  }

  private received(bytes: Buffer): void {
    if (this.fault) return;
    this.reader.push(bytes);
    try {
      this.parse();
    } catch (err) {
      this.fail(new ChassisDesync(`the ${this.opts.mode} chassis broke the pipe protocol: ${(err as Error).message}; chassis killed`));
    }
  }

  private parse(): void {
    for (;;) {
      if (this.started) {
        const n = this.reader.readInt();
        if (n === null) return;
        const outcome = START_ANSWERS[n];
        if (!outcome) throw new FrameError(`start answer ${n} is not 0, 1 or 2`);
        this.started(outcome);
        continue;
      }
      if (this.upcall) {
        if (this.reader.buffered > 0) throw new FrameError('the chassis wrote while waiting for the answer to crawl()');
        return;
      }
      const p = this.pending;
      if (!p) {
        if (this.reader.buffered > 0) throw new FrameError('the chassis wrote outside a call');
        return;
      }
      if (p.rc === null) {
        const n = this.reader.readInt();
        if (n === null) return;
        if (n > 0 && n !== UPCALL_CRAWL) throw new FrameError(`reply code ${n} is neither 0, a negative errno nor an upcall`);
        p.rc = n;
      }
      const payload = this.reader.readBytes();
      if (payload === null) return;
      const rc = p.rc;
      p.rc = null;
      if (rc === UPCALL_CRAWL) this.answerCrawl(payload);
      else this.settle(rc, payload);
    }
  }

  private answerCrawl(payload: Buffer): void {
    const ask = async (): Promise<number> => {
      if (!this.opts.onCrawl) return -ENOSYS;
      try {
        return await this.opts.onCrawl(JSON.parse(payload.toString('utf8')));
      } catch {
        return -ENOSYS;
      }
    };
    this.upcall = ask().then((answer) => {
      this.upcall = null;
      this.write([encodeInt(answer)]);
      this.received(Buffer.alloc(0)); // bytes that arrived meanwhile are out of step
    });
  }

  private settle(rc: number, payload: Buffer): void {
    const p = this.pending!;
    this.pending = null;
    clearTimeout(p.timer);
    const result: CallResult = { rc };
    if (rc !== 0) {
      if (payload.length > 0) result.error = payload.toString('utf8');
    } else if (CHUNK_MODES.has(this.opts.mode)) result.chunk = payload;
    else if (VALUE_MODES.has(this.opts.mode)) result.value = payload.toString('utf8');
    p.resolve(result);
  }

  /** Kills the process and fails the call in progress with err. */
  private fail(err: Error): void {
    this.fault ??= err;
    this.kill();
    this.rejectPending(err);
    if (this.started) this.started('failed');
  }

  private ended(err: Error): void {
    this.exited = true;
    this.rejectPending(this.fault ?? err);
    if (this.started) this.started('failed');
  }

  private rejectPending(err: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.reject(err);
  }

  /** Splits a stream into lines (bounded: a line without a newline is cut at MAX_LOG_LINE). */
  private lines(stream: Readable, name: 'stdout' | 'stderr'): void {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      const lines = (rest + text).split('\n');
      rest = lines.pop()!;
      if (rest.length > MAX_LOG_LINE) {
        lines.push(rest);
        rest = '';
      }
      for (const line of lines) this.opts.onLine(name, line.slice(0, MAX_LOG_LINE), this.lastRid);
    });
    stream.on('end', () => {
      if (rest) this.opts.onLine(name, rest, this.lastRid);
    });
  }
}
