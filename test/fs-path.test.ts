// fsPathProblem (http/data-url.ts): the URL grammar's path rules, which also judge the paths of a
// signed POST (issue 15, item 9). fast-check properties tie the two together: a path it accepts
// formats into a data URL that parses back to it, one it refuses cannot be formatted, and whatever
// a data URL parses to, it accepts. (test/data-url.test.ts holds the grammar's own properties.)
import test from 'ava';
import fc from 'fast-check';
import { BadUrlError, formatBlockUrl, fsPathProblem, parseDataUrl } from '../http/data-url.js';

const U64_MAX = (1n << 64n) - 1n;

test('paths a POST may not carry: relative, "..", ".", empty segments, NUL, over-long', (t) => {
  const bad = ['relative', '', '/a/../b', '/..', '/a/.', '/a//b', '/a/', '/a\u0000b', '/a\nb', `/${'x'.repeat(256)}`, `/${'d/'.repeat(2100)}f`, '/\ud800'];
  for (const p of bad) t.not(fsPathProblem(p), null, JSON.stringify(p.slice(0, 30)));
  for (const p of ['/a', '/a/b.c', '/é/日本/😀', `/${'x'.repeat(255)}`, '/.hidden', '/a..b']) t.is(fsPathProblem(p), null, p);
  t.not(fsPathProblem('/'), null, 'the root names no file');
  t.is(fsPathProblem('/', true), null, 'but may be refreshed');
});

const u64Arb = fc.bigInt({ min: 0n, max: U64_MAX });

const pathPiece = fc.oneof(
  fc.constantFrom('a', 'Z', '.', '..', '', '%', '%2e', '%2F', 'é', '😀', '\u0000', '\u001f', '\ud800', ' ', '?', '#', 'DATA', 'manifest.1.2'),
  fc.string({ maxLength: 8 }),
  fc.nat({ max: 300 }).map((n) => 'n'.repeat(n)),
);
const anyPath = fc.array(pathPiece, { maxLength: 6 }).map((segments) => `/${segments.join('/')}`);

test('property: an fs_path that fsPathProblem accepts formats into a data URL that parses back to it; one it refuses cannot be formatted', (t) => {
  fc.assert(fc.property(fc.oneof(anyPath, fc.string({ maxLength: 20 })), u64Arb, (fsPath, id) => {
    const addr = { volume_id: id, fs_path: fsPath, file_id: id, file_version: 1n, block_id: 0n, block_version: 0n };
    if (fsPathProblem(fsPath) !== null) {
      try {
        formatBlockUrl('', addr);
        return false;
      } catch (err) {
        return err instanceof RangeError;
      }
    }
    const parsed = parseDataUrl(formatBlockUrl('', addr));
    return parsed.fs_path === fsPath;
  }), { numRuns: 3000 });
  t.pass();
});

test('property: any pathname parses to an fs_path fsPathProblem accepts, or is refused with BadUrlError', (t) => {
  const raw = fc.array(fc.oneof(pathPiece, fc.constantFrom('/', '//', '/DATA/', '/DATA/1/', '.00AB.1/3.4', '/manifest.5.6', '%00', '%c3%28')), { maxLength: 10 }).map((p) => p.join(''));
  fc.assert(fc.property(raw, (pathname) => {
    try {
      return fsPathProblem(parseDataUrl(pathname).fs_path) === null;
    } catch (err) {
      return err instanceof BadUrlError;
    }
  }), { numRuns: 3000 });
  t.pass();
});
