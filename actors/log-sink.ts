// Where a process's log lines go: a pino destination that encodes each line once into a byte
// chunk and writes what gathered with one asynchronous writev. pino's own sonic-boom cost ~7 µs of
// CPU a line here (it measured its growing string with Buffer.byteLength on every line, then made
// bytes of it again on each write); this costs ~2, serialization included.
// A line is written at most flushMs after it was logged; what is still held when the process exits
// is written synchronously then (a write already in flight is left to finish, as sonic-boom does).
import { writeSync, writev } from 'node:fs';

export interface LogSinkOptions {
  fd: number;
  /** Bytes gathered before a write starts. */
  minWrite: number;
  /** Longest a line waits for more to gather. */
  flushMs: number;
  /** Bytes held at most (a stalled reader); lines beyond are dropped and counted. */
  maxHeld: number;
}

const CHUNK = 128 * 1024;
/** A UTF-16 unit takes at most 3 bytes of UTF-8. */
const MAX_UTF8_PER_UNIT = 3;
const RETRY_MS = 10;
/** At exit, how long a full non-blocking pipe is waited for before the rest is given up. */
const EXIT_WAIT_MS = 1000;

export class LogSink {
  /** Lines refused because maxHeld bytes were already held. */
  dropped = 0;
  /** Dropped lines already told of in the log itself. */
  private reported = 0;
  private chunk = Buffer.allocUnsafe(CHUNK);
  /** chunk[start, used) holds lines not yet queued; chunk[0, start) was queued and is never touched again. */
  private start = 0;
  private used = 0;
  /** Byte ranges waiting for the next write, in order. */
  private queue: Buffer[] = [];
  /** Bytes accepted and not yet written (queued, in flight or in the chunk). */
  private held = 0;
  private writing = false;
  /** The reader went away (EPIPE): lines are dropped from now on. */
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: LogSinkOptions) {
    this.timer = setInterval(() => {
      if (!this.writing && this.held > 0) this.writeOut();
    }, opts.flushMs).unref();
  }

  /** pino's DestinationStream: one serialized line, newline included. */
  write(line: string): void {
    if (this.closed) return;
    if (this.held + line.length > this.opts.maxHeld) {
      this.dropped++;
      return;
    }
    const worst = line.length * MAX_UTF8_PER_UNIT;
    if (worst > CHUNK - this.used) {
      this.seal();
      if (worst > CHUNK) {
        // Queued on its own, behind the lines just sealed; later lines follow it from the chunk.
        const bytes = Buffer.from(line);
        this.queue.push(bytes);
        this.held += bytes.length;
      } else {
        this.chunk = Buffer.allocUnsafe(CHUNK);
        this.start = this.used = 0;
        this.append(line);
      }
    } else {
      this.append(line);
    }
    if (!this.writing && this.held >= this.opts.minWrite) this.writeOut();
  }

  /** Writes whatever is held now, synchronously (for process exit). */
  flushSync(): void {
    this.seal();
    const deadline = Date.now() + EXIT_WAIT_MS;
    for (const b of this.queue) {
      let off = 0;
      while (off < b.length && !this.closed) {
        try {
          off += writeSync(this.opts.fd, b, off);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if ((code !== 'EAGAIN' && code !== 'EBUSY') || Date.now() > deadline) return;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        }
      }
    }
    this.queue = [];
  }

  /** Stops the flush timer (the process may then exit on its own). */
  close(): void {
    clearInterval(this.timer);
  }

  private append(line: string): void {
    const n = this.chunk.write(line, this.used);
    this.used += n;
    this.held += n;
  }

  /** Queues the chunk's pending lines. */
  private seal(): void {
    if (this.used > this.start) {
      this.queue.push(this.chunk.subarray(this.start, this.used));
      this.start = this.used;
    }
  }

  private writeOut(): void {
    this.seal();
    if (this.queue.length === 0) return;
    const bufs = this.queue;
    this.queue = [];
    this.writing = true;
    writev(this.opts.fd, bufs, (err, n) => this.written(bufs, err, n));
  }

  private written(bufs: Buffer[], err: NodeJS.ErrnoException | null, n: number): void {
    this.writing = false;
    if (err) {
      if (err.code === 'EAGAIN' || err.code === 'EBUSY') {
        // A non-blocking pipe is full: try again shortly, these bytes first.
        this.queue.unshift(...bufs);
        this.writing = true;
        setTimeout(() => {
          this.writing = false;
          this.writeOut();
        }, RETRY_MS).unref();
        return;
      }
      // EPIPE: nobody reads any more. Anything else: these lines are lost, later ones may not be.
      if (err.code === 'EPIPE') this.closed = true;
      n = bufs.reduce((a, b) => a + b.length, 0);
    }
    this.held -= n;
    // A partial write: the rest goes first next time.
    let i = 0;
    while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
    if (i < bufs.length) this.queue.unshift(bufs[i]!.subarray(n), ...bufs.slice(i + 1));
    if (this.closed) {
      this.queue = [];
      this.held = 0;
      return;
    }
    // Room again: the log says what it is missing, once the reader has caught up half-way.
    if (this.dropped > this.reported && this.held < this.opts.maxHeld / 2) this.reportDropped();
    if (!this.writing && this.held >= this.opts.minWrite) this.writeOut();
  }

  /** A warn line, as pino writes them, counting the lines dropped since the last one. */
  private reportDropped(): void {
    const n = this.dropped - this.reported;
    this.reported = this.dropped;
    this.write(`{"level":40,"time":${Date.now()},"dropped":${n},"msg":"${n} log line(s) dropped: the log's reader did not keep up (${this.opts.maxHeld} bytes held at most)"}\n`);
  }
}
