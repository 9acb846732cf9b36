/**
 * The longest delay `setTimeout`/`setInterval` honour: Node stores it as a signed 32-bit number of
 * milliseconds (about 24.8 days). A longer one is not refused: Node warns and fires after 1 ms,
 * so a loop meant to wait a month would run a thousand times a second.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Checks a configured delay before it reaches a timer: returns it unchanged, or throws a
 * RangeError naming `what` when it is not a finite number from 0 to {@link MAX_TIMER_DELAY_MS}.
 * Every timer whose delay comes from configuration takes it through here.
 */
export function timerDelay(ms: number, what: string): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIMER_DELAY_MS) {
    throw new RangeError(`${what}: ${ms} ms is not a delay a timer can wait (0 to ${MAX_TIMER_DELAY_MS} ms, about 24.8 days)`);
  }
  return ms;
}
