import { GraphQLError, type ParseOptions, type Source } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * graphql-js parses nested values and selections recursively: a document of
 * 20,000 nested `{` exhausts the stack. Refuse documents that nest brackets
 * deeper than any real operation does (selections are limited to a depth of
 * 10 and JSON to 32 levels), and with more tokens than `maxTokens`, before the
 * parser sees them. Applies to HTTP, SSE and WebSocket alike (all parse
 * through yoga's enveloped parse).
 */
export function useDocumentLimits(limits: { maxNesting: number; maxTokens: number }): Plugin {
  return {
    onParse: ({ parseFn, setParseFn }) => {
      setParseFn((source: string | Source, options?: ParseOptions) => {
        const text = typeof source === 'string' ? source : source.body;
        const nesting = bracketNesting(text, limits.maxNesting);
        if (nesting > limits.maxNesting) {
          throw new GraphQLError(`The document nests more than ${limits.maxNesting} levels of brackets`, {
            extensions: { code: 'BAD_USER_INPUT', limit: limits.maxNesting },
          });
        }
        return parseFn(source, { ...options, maxTokens: limits.maxTokens });
      });
    },
  };
}

/**
 * The deepest nesting of `{`, `[` and `(` outside strings and comments,
 * counted up to `limit + 1`. A lexer-level scan: it never recurses.
 */
export function bracketNesting(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '#') {
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
    } else if (char === '"') {
      if (text.startsWith('"""', i)) {
        const end = text.indexOf('"""', i + 3);
        i = end === -1 ? text.length : end + 2;
        // A block string may contain \""" (an escaped delimiter); that only shortens the skip, never deepens.
      } else {
        for (i++; i < text.length && text[i] !== '"' && text[i] !== '\n'; i++) if (text[i] === '\\') i++;
      }
    } else if (char === '{' || char === '[' || char === '(') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (char === '}' || char === ']' || char === ')') {
      depth = Math.max(0, depth - 1);
    }
  }
  return deepest;
}
