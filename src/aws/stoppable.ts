/**
 * Waits a long poll loop can cut short: each settles as usual, or with
 * undefined as soon as `signal` aborts (its listener removed either way).
 */
export function stoppable(signal: AbortSignal) {
  const orStop = <T>(promise: Promise<T>): Promise<T | undefined> =>
    new Promise<T | undefined>((resolve, reject) => {
      const onAbort = () => resolve(undefined);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  const pause = (ms: number): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    return orStop(new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))).finally(() => clearTimeout(timer));
  };
  return { orStop, pause };
}
