/**
 * Domain errors. Each carries the `extensions.code` a client sees; the GraphQL
 * layer maps them in one place (`src/server/mask-error.ts`). Anything that is
 * not a TaskError is unexpected: masked for the client and logged.
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'INVALID_TRANSITION'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'QUOTA_EXCEEDED'
  | 'SLOW_CONSUMER';

/** HTTP status that fits each code when the error ends a whole request. */
export const httpStatusOf: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  BAD_USER_INPUT: 400,
  INVALID_TRANSITION: 409,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  QUOTA_EXCEEDED: 429,
  SLOW_CONSUMER: 429,
};

export class TaskError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra, client-safe details added to `extensions`. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'TaskError';
  }
}

export const unauthenticated = (message: string) => new TaskError('UNAUTHENTICATED', message);
export const forbidden = (message: string) => new TaskError('FORBIDDEN', message);
export const notFound = (message: string) => new TaskError('NOT_FOUND', message);
export const badInput = (message: string, details?: Record<string, unknown>) => new TaskError('BAD_USER_INPUT', message, details);
export const conflict = (message: string, details?: Record<string, unknown>) => new TaskError('CONFLICT', message, details);
export const payloadTooLarge = (message: string, details?: Record<string, unknown>) => new TaskError('PAYLOAD_TOO_LARGE', message, details);
export const quotaExceeded = (message: string, details?: Record<string, unknown>) => new TaskError('QUOTA_EXCEEDED', message, details);
