/** A GraphQL error as the service reports it: `extensions.code` says what went wrong. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface ApiResult<T> {
  data: T;
  /** The server's clock when it answered (the Date header): where a watch can resume from. */
  serverTime: Date;
}

/** One GraphQL operation over HTTP, with the bearer token; rejects with ApiError on any error. */
export async function gql<T>(
  endpoint: string,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<ApiResult<T>> {
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The service cannot be reached', 'NETWORK');
  }
  const body = (await response.json().catch(() => ({}))) as {
    data?: T;
    errors?: { message: string; extensions?: { code?: string } }[];
  };
  const error = body.errors?.[0];
  if (error) throw new ApiError(error.message, error.extensions?.code);
  if (!response.ok || !body.data) throw new ApiError(`HTTP ${response.status}`, response.status === 401 ? 'UNAUTHENTICATED' : undefined);
  const date = Date.parse(response.headers.get('date') ?? '');
  return { data: body.data, serverTime: Number.isNaN(date) ? new Date() : new Date(date) };
}
