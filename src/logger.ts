/** Structured JSON lines on stderr; the shape graphql-yoga's `logging` option accepts. */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: serialize(value.cause) };
  }
  return value;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const at =
    (name: Exclude<LogLevel, 'silent'>) =>
    (...args: unknown[]) => {
      if (LOG_LEVELS.indexOf(name) < threshold) return;
      const [first, ...rest] = args;
      const message = typeof first === 'string' ? first : undefined;
      const data = (message === undefined ? args : rest).map(serialize);
      const entry = { time: new Date().toISOString(), level: name, msg: message, ...(data.length ? { data } : {}) };
      write(`${JSON.stringify(entry)}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
