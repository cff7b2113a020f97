// The one log line per request, written without pino's generic serializer: pino's asJson walked
// the field object of every request (~8% of the http actor's CPU per 64 KiB cache hit). The line
// is byte for byte what the logger itself would write (its level, time, bindings and stream; the
// fields in this order, undefined ones left out), checked by test/request-log.test.ts.
import { pino, type Logger } from 'pino';

/** What a request line says. */
export interface RequestLine {
  rid: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  cache?: string;
  rc?: number;
  reason?: string;
}

interface PinoInternals {
  [key: symbol]: unknown;
}

const INFO = 30;

/** Writes request lines as `logger.info(line, 'request')` would; null when info lines are off. */
export function requestLineWriter(logger: Logger): ((line: RequestLine) => void) | null {
  if (!logger.isLevelEnabled('info')) return null;
  const internals = logger as unknown as PinoInternals;
  const bindings = internals[pino.symbols.chindingsSym];
  const stream = internals[pino.symbols.streamSym] as { write(line: string): unknown } | undefined;
  if (typeof bindings !== 'string' || typeof stream?.write !== 'function') {
    return (l) => logger.info(l, 'request'); // a pino that keeps these elsewhere: the generic path
  }
  const head = `{"level":${INFO},"time":`;
  return (l) => {
    let line = `${head}${Date.now()}${bindings},"rid":${JSON.stringify(l.rid)},"method":${JSON.stringify(l.method)},"path":${JSON.stringify(l.path)},"status":${l.status},"ms":${l.ms}`;
    if (l.cache !== undefined) line += `,"cache":${JSON.stringify(l.cache)}`;
    if (l.rc !== undefined) line += `,"rc":${l.rc}`;
    if (l.reason !== undefined) line += `,"reason":${JSON.stringify(l.reason)}`;
    stream.write(`${line},"msg":"request"}\n`);
  };
}
