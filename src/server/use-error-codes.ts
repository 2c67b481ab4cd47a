import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * GraphQL's own validation errors (unknown fields, depth, cost and alias limits)
 * carry no code; give them BAD_USER_INPUT so every error a client sees has one.
 */
export function useErrorCodes(): Plugin {
  return {
    onValidate:
      () =>
      ({ result, setResult }) => {
        if (result.length === 0) return;
        setResult(
          result.map((error) =>
            error.extensions?.code
              ? error
              : new GraphQLError(error.message, {
                  nodes: error.nodes,
                  source: error.source,
                  positions: error.positions,
                  path: error.path,
                  originalError: error.originalError,
                  extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
                }),
          ),
        );
      },
  };
}
