// JSON-lines logs (pino) for every actor; secrets never reach a log line.
// Lines go to stdout in batches, written asynchronously: a synchronous write per line cost ~10 µs
// of a cache hit here, and synchronous 8 KiB writes stalled the event loop (measured worse still).
// A line waits at most LOG_FLUSH_MS; pino writes whatever is buffered when the process exits.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Bytes gathered before a write (sonic-boom wants it below its 16 KiB maxWrite). */
const LOG_WRITE_MIN = 8 * 1024;
const LOG_FLUSH_MS = 200;
/** A stalled log reader costs at most this much memory; lines beyond it are dropped. */
const LOG_BUFFER_MAX = 16 * 1024 * 1024;

let stdout: DestinationStream | null = null;

/** One buffered stdout per process, so lines of all its loggers keep their order. */
function bufferedStdout(): DestinationStream {
  stdout ??= pino.destination({ dest: 1, sync: false, minLength: LOG_WRITE_MIN, periodicFlush: LOG_FLUSH_MS, maxLength: LOG_BUFFER_MAX });
  return stdout;
}

export function createLogger(level: string, name = 'sgw'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['secrets', 'driver_secrets', '*.secrets', '*.private_key', 'headers.authorization', 'admin', '*.admin', '*.password', '*.token'], censor: '[redacted]' },
  }, bufferedStdout());
}
