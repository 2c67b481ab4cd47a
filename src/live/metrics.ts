/**
 * A few Prometheus counters and gauges, rendered in the text exposition format
 * at /metrics. Labels are small fixed sets (reasons, transports), never ids.
 */
type Labels = Record<string, string>;

class Series {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = JSON.stringify(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  dec(labels: Labels = {}, by = 1): void {
    this.inc(labels, -by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(JSON.stringify(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.values.values()) {
      const text = Object.entries(labels)
        .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
        .join(',');
      lines.push(`${this.name}${text ? `{${text}}` : ''} ${value}`);
    }
    return lines.join('\n');
  }
}

export function createMetrics() {
  const series = {
    connections: new Series('tasks_live_connections', 'Open live connections', 'gauge'),
    subscriptions: new Series('tasks_live_subscriptions', 'Active taskStatusChanged subscriptions', 'gauge'),
    eventsReceived: new Series('tasks_live_events_received_total', 'Task notifications received for dispatch', 'counter'),
    eventsDelivered: new Series('tasks_live_events_delivered_total', 'Events handed to subscribers', 'counter'),
    eventsDropped: new Series('tasks_live_events_dropped_total', 'Events not delivered, by reason', 'counter'),
    eventsCoalesced: new Series(
      'tasks_live_events_coalesced_total',
      'Queued events replaced by a newer one for a slow subscriber',
      'counter',
    ),
    notificationsRejected: new Series('tasks_sns_messages_rejected_total', 'SNS deliveries or notifications refused, by reason', 'counter'),
    publishFailures: new Series('tasks_publish_failures_total', 'Publishes to SNS that failed after retries', 'counter'),
  };
  return {
    ...series,
    render: () => `${[...Object.values(series).map((s) => s.render()), renderProcessMemory()].join('\n')}\n`,
  };
}

/**
 * This process's memory, read at each scrape (`process.memoryUsage()`): RSS,
 * the V8 heap, and memory outside it (Buffers, ArrayBuffers, native add-ons' allocations that V8 is told of).
 */
function renderProcessMemory(): string {
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
  const gauges: [string, string, number][] = [
    ['process_resident_memory_bytes', 'Resident set size in bytes', rss],
    ['nodejs_heap_size_total_bytes', 'V8 heap size in bytes', heapTotal],
    ['nodejs_heap_size_used_bytes', 'V8 heap used in bytes', heapUsed],
    ['nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects, Buffers included, in bytes', external],
    ['nodejs_array_buffers_bytes', 'Memory of ArrayBuffers and SharedArrayBuffers (Buffers included) in bytes', arrayBuffers],
  ];
  return gauges.map(([name, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}`).join('\n');
}

export type Metrics = ReturnType<typeof createMetrics>;
