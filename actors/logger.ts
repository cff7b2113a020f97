// JSON-lines logs (pino) for every actor; secrets never reach a log line.
// Lines go to stdout in batches, written asynchronously (actors/log-sink.ts): a synchronous write
// per line cost ~10 µs of a cache hit here, and synchronous 8 KiB writes stalled the event loop
// (measured worse still). A line waits at most LOG_FLUSH_MS; what is held when the process exits
// is written then.
import { pino, type Logger } from 'pino';
import { LogSink } from './log-sink.js';

export type { Logger };

/** Bytes gathered before a write: each write wakes a thread of the pool, which costs on a busy machine. */
const LOG_WRITE_MIN = 64 * 1024;
const LOG_FLUSH_MS = 200;
/** A stalled log reader costs at most this much memory; lines beyond it are dropped. */
const LOG_BUFFER_MAX = 16 * 1024 * 1024;

let stdout: LogSink | null = null;

/** One buffered stdout per process, so lines of all its loggers keep their order. */
function bufferedStdout(): LogSink {
  if (!stdout) {
    const sink = new LogSink({ fd: 1, minWrite: LOG_WRITE_MIN, flushMs: LOG_FLUSH_MS, maxHeld: LOG_BUFFER_MAX });
    process.once('exit', () => sink.flushSync());
    stdout = sink;
  }
  return stdout;
}

export function createLogger(level: string, name = 'sgw'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['secrets', 'driver_secrets', '*.secrets', '*.private_key', 'headers.authorization', 'admin', '*.admin', '*.password', '*.token'], censor: '[redacted]' },
  }, bufferedStdout());
}
