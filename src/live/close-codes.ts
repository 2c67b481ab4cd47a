/**
 * WebSocket close codes of our own (4000-4999 is for applications; graphql-ws
 * uses 4400-4499 and 4500 for its protocol, including 4401 and 4403 for auth).
 */
export const SLOW_CONSUMER_CLOSE_CODE = 4008;
export const TOKEN_EXPIRED_CLOSE_CODE = 4401;
export const TOO_MANY_CONNECTIONS_CLOSE_CODE = 4029;
