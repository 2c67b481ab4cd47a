/** setTimeout caps delays at about 24.8 days and fires at once past that; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer that can be called off. */
export interface Cancellable {
  cancel(): void;
}

/** Time for the live path's timers (token expiry), injectable so tests need not wait. */
export interface Clock {
  /** Calls `fire` at epoch milliseconds `at`, however far away. */
  at(at: number, fire: () => void): Cancellable;
}

export const systemClock: Clock = { at: atTime };

/** Calls `fire` at epoch milliseconds `at`, however far away. */
export function atTime(at: number, fire: () => void): Cancellable {
  return new Alarm(at, fire);
}

/**
 * One object and one Timeout per pending alarm, and no closures: every
 * WebSocket connection holds one (its token's expiry).
 */
class Alarm implements Cancellable {
  private timer!: NodeJS.Timeout;
  /** The wait was longer than one timer can: the next ring re-arms rather than fires. */
  private rearm = false;

  constructor(
    private readonly at: number,
    private readonly fire: () => void,
  ) {
    this.arm();
  }

  cancel(): void {
    clearTimeout(this.timer);
  }

  /** @internal */
  ring(): void {
    if (this.rearm) this.arm();
    else this.fire();
  }

  private arm(): void {
    const left = this.at - Date.now();
    this.rearm = left > MAX_TIMER_MS;
    this.timer = setTimeout(ring, Math.max(0, Math.min(left, MAX_TIMER_MS)), this);
  }
}

/** The timers' one callback (the alarm rides as its argument). */
function ring(alarm: Alarm): void {
  alarm.ring();
}
