import type { monitorEventLoopDelay as MonitorFn } from 'node:perf_hooks';

/**
 * What both servers (the service and the bare ws baseline) expose over IPC,
 * measured the same way in each: CPU time, the event-loop delay histogram
 * over a window, and memory after a full GC (needs --expose-gc).
 */
export function processProbe(monitorEventLoopDelay: typeof MonitorFn) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let windowCpu = process.cpuUsage();
  let windowStart = performance.now();

  const gc = () => {
    const collect = (globalThis as { gc?: () => void }).gc;
    if (!collect) return false;
    collect();
    collect();
    return true;
  };

  return {
    handlers: {
      cpu: () => {
        const { user, system } = process.cpuUsage();
        return { user, system, totalUs: user + system };
      },
      /** Starts a measurement window: CPU and the longest event-loop delay from now. */
      windowStart: () => {
        histogram.reset();
        windowCpu = process.cpuUsage();
        windowStart = performance.now();
        return true;
      },
      /** Ends it: CPU µs used, wall ms, the longest event-loop delay (ms) seen. */
      windowEnd: () => {
        const used = process.cpuUsage(windowCpu);
        const max = histogram.max;
        return {
          cpuUs: used.user + used.system,
          wallMs: performance.now() - windowStart,
          // max is in ns; an empty histogram reports a huge sentinel.
          maxDelayMs: histogram.count > 0 ? max / 1e6 : 0,
          p99DelayMs: histogram.count > 0 ? histogram.percentile(99) / 1e6 : 0,
        };
      },
      /** Full GC (twice), then memoryUsage(). */
      memory: async () => {
        const collected = gc();
        await new Promise((resolve) => setTimeout(resolve, 50));
        gc();
        const usage = process.memoryUsage();
        return { collected, ...usage };
      },
    },
  };
}
