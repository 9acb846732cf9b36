import type { ServiceIdentifier } from '../di.js';
import type { Logger as PinoLogger } from 'pino';

/** Structured logger (pino). Secrets are redacted by the host's logger configuration. Single binding. */
export type Logger = PinoLogger;
export const Logger: ServiceIdentifier<Logger> = Symbol.for('approvals.core.Logger');
