import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
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
  const profiler = cpuProfiler(process.env.BENCH_CPU_PROF);

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
      /** Starts a measurement window: CPU and the longest event-loop delay from now; a CPU profile with BENCH_CPU_PROF. */
      windowStart: async (args?: { label?: string }) => {
        await profiler?.start(args?.label ?? 'window');
        histogram.reset();
        windowCpu = process.cpuUsage();
        windowStart = performance.now();
        return true;
      },
      /** Ends it: CPU µs used, wall ms, the longest event-loop delay (ms) seen. */
      windowEnd: async () => {
        const used = process.cpuUsage(windowCpu);
        const max = histogram.max;
        await profiler?.stop();
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

/**
 * BENCH_CPU_PROF=<dir>: a V8 CPU profile of each measurement window, written
 * as <dir>/<label>-<pid>-<n>.cpuprofile (open in Chrome DevTools). Sampling
 * costs CPU: the figures of a profiled run are not comparable with others.
 */
export function cpuProfiler(dir: string | undefined) {
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  let label = 'window';
  let count = 0;
  return {
    async start(name: string) {
      label = name.replace(/[^\w.-]+/g, '_');
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    },
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(join(dir, `${label}-${process.pid}-${++count}.cpuprofile`), JSON.stringify(profile));
    },
  };
}
