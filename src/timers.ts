/** setTimeout caps delays at about 24.8 days and fires at once past that; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
