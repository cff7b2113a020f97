// A multipart/form-data body (RFC 7578, framing of RFC 2046 §5.1.1), read as it arrives: one part
// at a time, its content handed on in the pieces the socket delivered, so the caller decides what
// to keep and can stop (and refuse) before the rest is read. Boundaries are found with
// Buffer.indexOf (native; a JavaScript search cost ~3x as much CPU per MiB here, and the http
// actor is the busiest process of a PUTCHUNKS). Every part is bytes, whatever its headers say: the
// original client sends parts without a filename, as application/octet-stream (WIRE.md).
import { HttpError } from './errors.js';
import { partName } from './part-headers.js';
import type { BodySource } from './body-source.js';

/** Limits on what is read to find the parts (not the parts' content, which the caller bounds). */
const PREAMBLE_MAX = 1024;
const HEADERS_MAX = 16 << 10;
const PADDING_MAX = 128;
const EPILOGUE_MAX = 1024;
const CR = 0x0d;
const DASH = 0x2d;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

function bad(message: string): HttpError {
  return new HttpError(400, `bad multipart body: ${message}`);
}

/** The boundary of a multipart/form-data Content-Type, or an HttpError. */
export function boundaryOf(contentType: string | undefined): string {
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType ?? '')) {
    throw new HttpError(400, 'expected multipart/form-data with control-plane and data-plane parts');
  }
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s"]{1,70}))\s*(?:;|$)/i.exec(contentType!);
  if (!m) throw bad('no usable boundary in Content-Type (1 to 70 characters)');
  return (m[1] ?? m[2])!;
}

/** Length of the longest end of `piece` that begins `delimiter` (a delimiter cut by the piece's end). */
function cutDelimiter(piece: Buffer, delimiter: Buffer): number {
  let at = piece.indexOf(CR, Math.max(0, piece.length - delimiter.length + 1));
  while (at >= 0) {
    const rest = piece.length - at;
    if (piece.compare(delimiter, 0, rest, at) === 0) return rest;
    at = piece.indexOf(CR, at + 1);
  }
  return 0;
}

export class MultipartReader {
  /** `--boundary`, as it opens the body. */
  private readonly dashBoundary: Buffer;
  /** CRLF `--boundary`: how every part ends. */
  private readonly delimiter: Buffer;
  private state: 'start' | 'between' | 'content' | 'closed' = 'start';

  constructor(private readonly source: BodySource, boundary: string) {
    this.dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  /**
   * Reads up to the next part's content: its form-data name, or null when the body's closing
   * delimiter came instead. The previous part's content must have been read.
   */
  async nextPart(): Promise<string | null> {
    if (this.state === 'content') throw new Error('read the content of the current part first');
    if (this.state === 'closed') return null;
    if (this.state === 'start') await this.skipPreamble();
    // Just after a `--boundary`: `--` closes the body; else padding, CRLF, headers, blank line.
    let acc = await this.gather(2, HEADERS_MAX);
    if (acc[0] === DASH && acc[1] === DASH) {
      this.source.unshift(acc.subarray(2));
      this.state = 'closed';
      return null;
    }
    let lineEnd = acc.indexOf(CRLF);
    while (lineEnd < 0 && acc.length <= PADDING_MAX) {
      acc = await this.more(acc, HEADERS_MAX);
      lineEnd = acc.indexOf(CRLF);
    }
    if (lineEnd < 0 || lineEnd > PADDING_MAX || !/^[ \t]*$/.test(acc.toString('latin1', 0, lineEnd))) {
      throw bad('a boundary is not followed by CRLF');
    }
    let end = acc.indexOf(HEADER_END, lineEnd);
    while (end < 0) {
      acc = await this.more(acc, HEADERS_MAX);
      end = acc.indexOf(HEADER_END, lineEnd);
    }
    const name = partName(acc.toString('latin1', lineEnd + 2, end));
    this.source.unshift(acc.subarray(end + 4));
    this.state = 'content';
    return name;
  }

  /**
   * Hands the current part's content to `onPiece` as it arrives (each piece once, in order; a
   * throw stops the reading) and resolves with its length once the part's delimiter came.
   */
  async readContent(onPiece: (piece: Buffer) => void): Promise<number> {
    if (this.state !== 'content') throw new Error('no part is open');
    const d = this.delimiter;
    let total = 0;
    const emit = (b: Buffer) => {
      if (b.length === 0) return;
      total += b.length;
      onPiece(b);
    };
    let carry: Buffer | null = null; // the end of the last piece, which might begin a delimiter
    for (;;) {
      let piece = await this.source.next();
      if (piece === null) throw bad('the body ends inside a part');
      if (carry) {
        if (piece.length < d.length) {
          piece = Buffer.concat([carry, piece]);
        } else {
          const head = Buffer.concat([carry, piece.subarray(0, d.length)]);
          const at = head.indexOf(d);
          if (at >= 0 && at < carry.length) {
            emit(carry.subarray(0, at));
            this.source.unshift(piece.subarray(at + d.length - carry.length));
            break;
          }
          emit(carry);
        }
        carry = null;
      }
      const at = piece.indexOf(d);
      if (at >= 0) {
        emit(piece.subarray(0, at));
        this.source.unshift(piece.subarray(at + d.length));
        break;
      }
      const cut = cutDelimiter(piece, d);
      emit(piece.subarray(0, piece.length - cut));
      if (cut > 0) carry = piece.subarray(piece.length - cut);
    }
    this.state = 'between';
    return total;
  }

  /** After the closing delimiter: reads the (short) epilogue to the end of the body. */
  async finish(): Promise<void> {
    if (this.state !== 'closed') throw new Error('the body is not closed yet');
    let epilogue = 0;
    for (let piece = await this.source.next(); piece !== null; piece = await this.source.next()) {
      epilogue += piece.length;
      if (epilogue > EPILOGUE_MAX) throw bad(`more than ${EPILOGUE_MAX} bytes follow the closing boundary`);
    }
  }

  /** Skips what precedes the first `--boundary`: nothing, or a short preamble ending in CRLF. */
  private async skipPreamble(): Promise<void> {
    const dash = this.dashBoundary;
    let acc = await this.gather(dash.length, PREAMBLE_MAX + this.delimiter.length);
    for (;;) {
      if (acc.subarray(0, dash.length).equals(dash)) {
        this.source.unshift(acc.subarray(dash.length));
        break;
      }
      const at = acc.indexOf(this.delimiter);
      if (at >= 0) {
        this.source.unshift(acc.subarray(at + this.delimiter.length));
        break;
      }
      if (acc.length > PREAMBLE_MAX + this.delimiter.length) throw bad('no opening boundary');
      acc = await this.more(acc, PREAMBLE_MAX + this.delimiter.length, 'no opening boundary');
    }
    this.state = 'between';
  }

  /** At least `min` bytes (fewer only if the body ends: then 400). */
  private async gather(min: number, max: number): Promise<Buffer> {
    let acc: Buffer = Buffer.alloc(0);
    while (acc.length < min) acc = await this.more(acc, max);
    return acc;
  }

  /** acc with the next piece appended; 400 when the body ends or acc would grow past max. */
  private async more(acc: Buffer, max: number, problem = 'part headers never end'): Promise<Buffer> {
    if (acc.length > max) throw bad(problem);
    const piece = await this.source.next();
    if (piece === null) throw bad(this.state === 'start' ? 'no opening boundary' : 'the body ends before its closing boundary');
    return acc.length === 0 ? piece : Buffer.concat([acc, piece]);
  }
}
