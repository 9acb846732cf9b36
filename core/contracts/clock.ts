import type { ServiceIdentifier } from '../di.js';

/** The host's notion of now; tests and the sandbox bind a settable one. Single binding. */
export interface Clock {
  now(): Date;
}
export const Clock: ServiceIdentifier<Clock> = Symbol.for('approvals.core.Clock');

export const systemClock: Clock = { now: () => new Date() };
