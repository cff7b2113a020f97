// The request line is written without pino's generic serializer (http/request-log.ts): it must be
// the line pino itself writes for the same fields, escapes and missing fields included.
import test from 'ava';
import { pino } from 'pino';
import { requestLineWriter, type RequestLine } from '../http/request-log.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = pino({ name: 'sgw', level }, { write: (s: string) => { lines.push(s); } }).child({ actor: 'http', gateway: 'RG "7"' });
  return { logger, lines };
}

const withoutTime = (line: string) => line.replace(/"time":\d+/, '"time":0');

const cases: RequestLine[] = [
  { rid: 'a1', method: 'GET', path: '/DATA/1/2/3.4/5.6', status: 200, ms: 0.42, cache: 'hit' },
  { rid: 'b2', method: 'POST', path: '/', status: 401, ms: 12.5, rc: -5, reason: 'a "quoted" reason\nwith a newline and \u2028 é' },
  { rid: 'c3', method: 'GET', path: '/FILES/dir/ü ñ\\x', status: 404, ms: 3 },
];

test('each request line is the line pino writes for the same fields', (t) => {
  for (const c of cases) {
    const ours = capture();
    const theirs = capture();
    requestLineWriter(ours.logger)!(c);
    theirs.logger.info({ ...c }, 'request');
    t.is(ours.lines.length, 1);
    t.is(withoutTime(ours.lines[0]!), withoutTime(theirs.lines[0]!));
    t.deepEqual(JSON.parse(ours.lines[0]!).path, c.path);
  }
});

test('with info lines off there is no writer', (t) => {
  t.is(requestLineWriter(capture('warn').logger), null);
});
