// A progress line for long CLI transfers: bytes done, total, percent and rate on one line of a
// terminal, redrawn at most every 200 ms. Nothing is written when the stream is not a TTY, so
// pipes and logs stay clean.
const REDRAW_MS = 200;

function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export class ProgressLine {
  private done = 0;
  private lastDraw = 0;
  private readonly started = Date.now();
  private readonly on: boolean;

  /** total: bytes expected, or null when unknown. */
  constructor(private readonly label: string, private readonly total: number | null, private readonly out: NodeJS.WriteStream = process.stderr) {
    this.on = out.isTTY === true;
  }

  add(bytes: number): void {
    this.done += bytes;
    if (!this.on) return;
    const now = Date.now();
    if (now - this.lastDraw >= REDRAW_MS) {
      this.lastDraw = now;
      this.draw();
    }
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (!this.on) return;
    this.draw();
    this.out.write('\n');
  }

  private draw(): void {
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    const of = this.total === null ? '' : ` / ${human(this.total)}  ${this.total === 0 ? 100 : Math.floor((100 * this.done) / this.total)}%`;
    this.out.write(`\r\x1b[K${this.label}  ${human(this.done)}${of}  ${(this.done / secs / 1e6).toFixed(1)} MB/s`);
  }
}
