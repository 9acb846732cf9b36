import { pino, type DestinationStream } from 'pino';
import type { Logger } from '../contracts/logger.js';
import { scrubSecrets } from './secret-registry.js';

export { registerSecret, scrubSecrets } from './secret-registry.js';

export interface LoggerOptions {
  readonly level?: string;
  /** Defaults to stderr, so stdout stays for command output. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      base: undefined,
      redact: { paths: ['*.access_token', '*.refresh_token', '*.client_secret', '*.password', '*.authorization', '*.Authorization'], censor: '[REDACTED]' },
      hooks: { streamWrite: scrubSecrets },
    },
    options.destination ?? pino.destination(2),
  );
}
