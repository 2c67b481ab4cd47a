import { createHash } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
} from 'jose';
import { unauthenticated } from '../errors.js';
import { Lru } from '../lru.js';
import { CODE_PATTERN, CODE_RULE } from '../tasks/limits.js';
import type { ViewerScope } from '../tasks/viewer-scope.js';
import { isViewerTokenType, readViewerClaims, VIEWER_TOKEN_AUDIENCE, VIEWER_TOKEN_TYPE } from './viewer-token.js';

export interface AuthConfig {
  /** HS256 shared secret. */
  secret?: string;
  /** JWKS endpoint for RS256/ES256 tokens, e.g. a Cognito user pool's `.well-known/jwks.json`. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  claims: { user: string; tenant: string; roles: string };
  adminRole: string;
  /** HS256 secret of viewer tokens (createViewerToken); without it they are refused. */
  viewerSecret?: string;
}

export interface Identity {
  userId: string;
  tenantCode: string;
  isAdmin: boolean;
  /** Epoch seconds at which the token stops being valid. */
  expiresAt: number;
  /** Set for a viewer token: the only tasks it may read and watch. */
  scope?: ViewerScope;
}

/** Verifies an `Authorization` header value and returns who it names. */
export type TokenVerifier = (authorization: string | null | undefined) => Promise<Identity>;

const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384'];

export function createTokenVerifier(config: AuthConfig): TokenVerifier {
  if (!config.secret && !config.jwksUrl) throw new Error('Authentication needs JWT_SECRET or JWKS_URL');
  const key: Uint8Array | JWTVerifyGetKey = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl))
    : new TextEncoder().encode(config.secret);
  const options = {
    // Never `none`, and never a symmetric algorithm against a public key.
    algorithms: config.jwksUrl ? ASYMMETRIC_ALGORITHMS : ['HS256'],
    issuer: config.issuer,
    audience: config.audience,
    requiredClaims: ['exp'],
  };
  const viewerKey = config.viewerSecret ? new TextEncoder().encode(config.viewerSecret) : undefined;
  const viewerOptions = {
    algorithms: ['HS256'],
    typ: VIEWER_TOKEN_TYPE,
    audience: VIEWER_TOKEN_AUDIENCE,
    requiredClaims: ['exp', 'iat', 'sub'],
  };

  // A verified token maps to the same identity until it expires: skip the
  // signature check for a token seen in the last minute (every request of a
  // client carries the same one). Keyed by digest: a viewer token naming 100 tasks is several KB.
  const verified = new Lru<string, Identity>(10_000, 60_000);

  return async (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw unauthenticated('Send Authorization: Bearer <token>');
    const cacheKey = createHash('sha256').update(match[1]!).digest('base64url');
    const cached = verified.get(cacheKey);
    if (cached && cached.expiresAt * 1000 > Date.now()) return cached;
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(match[1]!);
    } catch {
      throw unauthenticated('The token is invalid');
    }
    if (isViewerTokenType(header.typ)) {
      const identity = await verifyViewerToken(match[1]!);
      verified.set(cacheKey, identity);
      return identity;
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1]!, key, options));
    } catch (error) {
      throw unauthenticated(describe(error));
    }
    const userId = payload[config.claims.user];
    const tenantCode = payload[config.claims.tenant];
    if (typeof userId !== 'string' || userId === '') throw unauthenticated(`The token has no ${config.claims.user} claim`);
    if (typeof tenantCode !== 'string' || tenantCode === '') {
      throw unauthenticated(`The token has no ${config.claims.tenant} claim`);
    }
    // The tenant becomes part of every key: it must be a valid key part, as stated, never trimmed or rewritten.
    if (!CODE_PATTERN.test(tenantCode)) {
      throw unauthenticated(`The token ${config.claims.tenant} claim must be ${CODE_RULE}`);
    }
    const identity: Identity = {
      userId,
      tenantCode,
      isAdmin: rolesOf(payload[config.claims.roles]).includes(config.adminRole),
      expiresAt: payload.exp!,
    };
    verified.set(cacheKey, identity);
    return identity;
  };

  /** A viewer token: signed with the viewer secret only, never a full identity. */
  async function verifyViewerToken(token: string): Promise<Identity> {
    if (!viewerKey) throw unauthenticated('Viewer tokens are not accepted: VIEWER_TOKEN_SECRET is not set');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, viewerKey, viewerOptions));
    } catch (error) {
      throw unauthenticated(describe(error));
    }
    const claims = readViewerClaims(payload);
    if (!claims) throw unauthenticated('The viewer token claims are invalid');
    return { ...claims, isAdmin: false, expiresAt: payload.exp! };
  }
}

/** Roles arrive as an array, or (Cognito custom attributes are strings) as JSON or comma-separated text. */
function rolesOf(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.filter((role): role is string => typeof role === 'string');
  if (typeof claim !== 'string') return [];
  if (claim.trim().startsWith('[')) {
    try {
      return rolesOf(JSON.parse(claim));
    } catch {
      return [];
    }
  }
  return claim.split(',').map((role) => role.trim());
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The token signature is invalid';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'The token algorithm is not allowed';
  if (error instanceof errors.JWTClaimValidationFailed) return `The token ${error.claim} claim is invalid`;
  return 'The token is invalid';
}
