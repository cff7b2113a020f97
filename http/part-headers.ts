// The header block of one multipart/form-data part, read strictly (RFC 7578, parameters as in
// RFC 7231 §3.1.1.1 and RFC 2183): a proxy that filters on part names and this gateway must never
// see different names in the same bytes, so whatever a standard parser could read two ways is
// refused instead of guessed at: folded lines, a repeated Content-Disposition or parameter, space
// around `=`, a trailing `;`, an unterminated quoted string, a backslash in one, `name*`, an empty
// name. test/multipart.test.ts checks every name accepted here against busboy's reading.
import { HttpError } from './errors.js';

/** RFC 7230 tchar. */
const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;

function bad(message: string): HttpError {
  return new HttpError(400, `bad multipart part header: ${message}`);
}

export interface Disposition {
  type: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Map<string, string>;
}

/** Parses a Content-Disposition value: `type *( OWS ";" OWS name=(token / quoted-string) )`. */
export function parseDisposition(value: string): Disposition {
  let i = 0;
  const readToken = (what: string): string => {
    const start = i;
    while (i < value.length && TOKEN_CHAR.test(value[i]!)) i++;
    if (i === start) throw bad(`expected a ${what} at ${JSON.stringify(value.slice(start, start + 20))}`);
    return value.slice(start, i);
  };
  const skipSpace = () => {
    while (value[i] === ' ' || value[i] === '\t') i++;
  };
  const type = readToken('disposition type').toLowerCase();
  const params = new Map<string, string>();
  for (;;) {
    skipSpace();
    if (i === value.length) break;
    if (value[i] !== ';') throw bad(`expected ';' at ${JSON.stringify(value.slice(i, i + 20))}`);
    i++;
    skipSpace();
    if (i === value.length) throw bad('a trailing \';\''); // some parsers drop the whole header for it
    const name = readToken('parameter name').toLowerCase();
    if (value[i] !== '=') throw bad(`parameter ${name} has no '=' right after its name`);
    i++;
    let v: string;
    if (value[i] === '"') {
      i++;
      v = '';
      for (;;) {
        if (i >= value.length) throw bad(`the quoted value of ${name} never ends`);
        const c = value[i]!;
        if (c === '"') break;
        // Parsers disagree on backslash escapes (RFC 7578 §4.2 has senders percent-encode
        // instead), so a name could read two ways: refused.
        if (c === '\\') throw bad(`the quoted value of ${name} holds a backslash`);
        v += c;
        i++;
      }
      i++;
    } else {
      v = readToken(`value of ${name}`);
    }
    if (params.has(name)) throw bad(`parameter ${name} appears twice`);
    params.set(name, v);
  }
  if (params.has('name*')) throw bad('name* is not accepted (RFC 7578 §4.2): send name');
  return { type, params };
}

/** The form-data name of a part whose header block (between the boundary line and the blank line) is given, as latin1. */
export function partName(block: string): string {
  let disposition: string | null = null;
  for (const line of block.split('\r\n')) {
    if (line === '') throw bad('an empty header line');
    if (line[0] === ' ' || line[0] === '\t') throw bad('a folded header line (obsolete line folding)');
    const m = HEADER_LINE.exec(line);
    if (!m) throw bad(`${JSON.stringify(line.slice(0, 40))} is not a header`);
    if (m[1]!.toLowerCase() !== 'content-disposition') continue;
    if (disposition !== null) throw bad('two Content-Disposition headers');
    disposition = m[2]!;
  }
  if (disposition === null) throw bad('no Content-Disposition header');
  const d = parseDisposition(disposition);
  if (d.type !== 'form-data') throw bad(`disposition ${d.type} is not form-data`);
  const name = d.params.get('name');
  if (name === undefined || name === '') throw bad('no name parameter');
  return name;
}
