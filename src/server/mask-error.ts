import { GraphQLError } from 'graphql';
import { createGraphQLError, maskError as defaultMaskError, type YogaServerOptions } from 'graphql-yoga';
import { httpStatusOf, TaskError } from '../errors.js';
import type { Logger } from '../logger.js';

type MaskError = NonNullable<Exclude<YogaServerOptions<object, object>['maskedErrors'], boolean | undefined>['maskError']>;

/**
 * The one place a domain error becomes a GraphQL error with `extensions.code`.
 * It carries no originalError: yoga counts errors with a non-GraphQL original
 * as unexpected (HTTP 500 where a result has no data, as when a subscription
 * is refused at setup).
 */
export function toGraphQLError(error: TaskError, at?: GraphQLError, withHttpStatus = false): GraphQLError {
  return createGraphQLError(error.message, {
    nodes: at?.nodes,
    source: at?.source,
    positions: at?.positions,
    path: at?.path,
    extensions: {
      code: error.code,
      ...error.details,
      ...(withHttpStatus ? { http: { status: httpStatusOf[error.code] } } : {}),
    },
  });
}

/**
 * Domain errors pass with their code and are logged at info, without a stack:
 * they are the client's mistakes, not faults. GraphQL's own errors (syntax,
 * validation, variable coercion, limits) get BAD_USER_INPUT and are logged at
 * debug. Everything else is logged at error with its stack and masked as
 * "Unexpected error.".
 */
export function createMaskError(logger: Logger): MaskError {
  return (error, message, isDev) => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    if (original instanceof TaskError) {
      logger.info('client error', { code: original.code, message: original.message, path: pathOf(error) });
      // Already converted (the context factory does, to keep its HTTP status).
      if (error instanceof GraphQLError && error.extensions.code === original.code) return error;
      return toGraphQLError(original, error instanceof GraphQLError ? error : undefined);
    }
    if (error instanceof GraphQLError && (!error.originalError || error.originalError instanceof GraphQLError)) {
      if (error.extensions.code) return error;
      logger.debug('invalid request', { message: error.message });
      return new GraphQLError(error.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
      });
    }
    const masked = defaultMaskError(error, message, isDev);
    if (masked !== error) logger.error('unexpected error', error);
    return masked;
  };
}

const pathOf = (error: unknown) => (error instanceof GraphQLError && error.path ? error.path.join('.') : undefined);
