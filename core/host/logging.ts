import { pino, type DestinationStream } from 'pino';
import type { Logger } from '../contracts/logger.js';

/**
 * Every secret the process holds (resolved references, rotated tokens). Log lines are scrubbed of
 * these values before they are written, whatever field or message carries them.
 */
const secrets = new Set<string>();

/** Registers a secret value so no log line ever shows it. Values shorter than 6 characters are ignored. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

export function scrubSecrets(line: string): string {
  let out = line;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  return out;
}

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
