// The framing of the Python chassis' pipe protocol (Syndicate's): integers as "<decimal>\n", byte
// strings as "<len>\n<bytes>\n". The reader is incremental (bytes arrive in pieces), bounded and
// strict: anything else is a FrameError, after which the pipe is never read on.

/** The peer wrote something that is not a frame: the pipe is out of step. */
export class FrameError extends Error {
  override name = 'FrameError';
}

const NEWLINE = Buffer.from('\n');
const MAX_INT_LINE = 22; // "-" + 20 digits + "\n"
const INT_LINE = /^-?[0-9]{1,20}$/;

export function encodeInt(n: number): Buffer {
  return Buffer.from(`${n}\n`);
}

/** A byte string as buffers to write in order (the payload itself is not copied). */
export function encodeBytes(bytes: Uint8Array): Buffer[] {
  return [Buffer.from(`${bytes.length}\n`), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), NEWLINE];
}

export class FrameReader {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(readonly maxBytes: number) {}

  push(bytes: Buffer): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.length;
  }

  /** The next integer, or null until its line is complete. */
  readInt(): number | null {
    const line = this.intLine();
    if (!line) return null;
    this.skip(line.size);
    return line.value;
  }

  /** The next byte string, or null until all of it arrived. */
  readBytes(): Buffer | null {
    const line = this.intLine();
    if (!line) return null;
    if (line.value < 0 || line.value > this.maxBytes) throw new FrameError(`byte string of ${line.value} bytes is out of bounds (0..${this.maxBytes})`);
    if (this.length < line.size + line.value + 1) return null;
    this.skip(line.size);
    const bytes = this.take(line.value);
    if (this.take(1)[0] !== 0x0a) throw new FrameError(`byte string of ${line.value} bytes is not followed by a newline`);
    return bytes;
  }

  private intLine(): { value: number; size: number } | null {
    const head = this.peek(Math.min(this.length, MAX_INT_LINE));
    const nl = head.indexOf(0x0a);
    if (nl < 0) {
      if (head.length >= MAX_INT_LINE) throw new FrameError(`expected an integer line, got ${JSON.stringify(head.toString('latin1'))}`);
      return null;
    }
    const text = head.subarray(0, nl).toString('latin1');
    const value = Number(text);
    if (!INT_LINE.test(text) || !Number.isSafeInteger(value)) throw new FrameError(`expected an integer line, got ${JSON.stringify(text)}`);
    return { value, size: nl + 1 };
  }

  private peek(n: number): Buffer {
    if (this.parts.length === 0) return Buffer.alloc(0);
    if (this.parts[0]!.length < n) this.parts = [Buffer.concat(this.parts)];
    return this.parts[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  private skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const first = this.parts[0]!;
      if (first.length > n) {
        this.parts[0] = first.subarray(n);
        return;
      }
      n -= first.length;
      this.parts.shift();
    }
  }
}
