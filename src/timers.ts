/** setTimeout caps delays at about 24.8 days and fires at once past that; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Time for the live path's timers (token expiry), injectable so tests need not wait. */
export interface Clock {
  /** Calls `fire` at epoch milliseconds `at`, however far away; returns the cancel function. */
  at(at: number, fire: () => void): () => void;
}

export const systemClock: Clock = { at: atTime };

/** Calls `fire` at epoch milliseconds `at`, however far away; returns the cancel function. */
export function atTime(at: number, fire: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = at - Date.now();
    timer = setTimeout(() => (left > MAX_TIMER_MS ? arm() : fire()), Math.max(0, Math.min(left, MAX_TIMER_MS)));
  };
  arm();
  return () => clearTimeout(timer);
}
