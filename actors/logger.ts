// JSON-lines logs (pino) for every actor; secrets never reach a log line.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'sgw'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['secrets', 'driver_secrets', '*.secrets', '*.private_key', 'headers.authorization', 'admin', '*.admin', '*.password', '*.token'], censor: '[redacted]' },
  });
}
