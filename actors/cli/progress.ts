// A single updating status line on stderr for CLI commands that move or wait on data. Shown only on
// a terminal and only once the operation has lasted a moment: quick commands and scripts (pipes,
// log files, CI) see nothing.

/** The part of a stream the line needs (process.stderr has both). */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressOptions {
  /** Nothing is shown before the operation has lasted this long. */
  delayMs?: number;
  /** How often the line is redrawn. */
  intervalMs?: number;
  /** Clock and timer, replaceable so tests can drive the line without waiting. */
  now?: () => number;
  every?: (tick: () => void, ms: number) => { stop(): void };
}

const DEFAULT_DELAY_MS = 1000;
const DEFAULT_INTERVAL_MS = 200;
const CLEAR_LINE = '\r\x1b[K';
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function realTimer(tick: () => void, ms: number): { stop(): void } {
  const timer = setInterval(tick, ms);
  timer.unref(); // never keeps a finished command alive
  return { stop: () => clearInterval(timer) };
}

export class ProgressLine {
  private readonly started: number;
  private readonly now: () => number;
  private readonly delayMs: number;
  private readonly timer: { stop(): void } | null;
  private detail = '';
  private shown = false;
  private frame = 0;

  constructor(private label: string, private readonly stream: ProgressStream = process.stderr, opts: ProgressOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    this.delayMs = opts.delayMs ?? DEFAULT_DELAY_MS;
    // Not a terminal: no timer at all, so nothing can ever be written.
    this.timer = stream.isTTY ? (opts.every ?? realTimer)(() => this.draw(), opts.intervalMs ?? DEFAULT_INTERVAL_MS) : null;
  }

  /** Names what is happening now ("bundling", "3/4 actors ready"); shown on the next redraw. */
  update(label: string, detail = ''): void {
    this.label = label;
    this.detail = detail;
  }

  private draw(): void {
    const elapsed = this.now() - this.started;
    if (elapsed < this.delayMs) return;
    const spin = SPINNER[this.frame++ % SPINNER.length];
    const detail = this.detail ? ` (${this.detail})` : '';
    this.stream.write(`${CLEAR_LINE}${spin} ${this.label}${detail} ${(elapsed / 1000).toFixed(1)}s`);
    this.shown = true;
  }

  /** Stops redrawing and erases the line, so the command's own output starts on a clean line. */
  done(): void {
    this.timer?.stop();
    if (this.shown) this.stream.write(CLEAR_LINE);
    this.shown = false;
  }
}

/** Runs `work` with a progress line that is erased however the work ends. */
export async function withProgress<T>(label: string, work: (line: ProgressLine) => Promise<T>, stream?: ProgressStream, opts?: ProgressOptions): Promise<T> {
  const line = new ProgressLine(label, stream, opts);
  try {
    return await work(line);
  } finally {
    line.done();
  }
}

function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A transfer on a progress line: bytes done, of the total when known, percent and rate. */
export class TransferProgress {
  private done = 0;
  private readonly started: number;
  private readonly now: () => number;
  private readonly line: ProgressLine;

  /** total: bytes expected, or null when unknown. */
  constructor(private readonly label: string, private readonly total: number | null, stream?: ProgressStream, opts: ProgressOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    this.line = new ProgressLine(label, stream, opts);
  }

  add(bytes: number): void {
    this.done += bytes;
    const secs = Math.max(0.001, (this.now() - this.started) / 1000);
    const of = this.total === null ? '' : ` / ${human(this.total)}, ${this.total === 0 ? 100 : Math.floor((100 * this.done) / this.total)}%`;
    this.line.update(this.label, `${human(this.done)}${of}, ${(this.done / secs / 1e6).toFixed(1)} MB/s`);
  }

  /** Erases the line. */
  finish(): void {
    this.line.done();
  }
}
