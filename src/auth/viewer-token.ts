import { SignJWT, type JWTPayload } from 'jose';
import { forbidden } from '../errors.js';
import { parseTaskId } from '../tasks/keys.js';
import { CODE_PATTERN } from '../tasks/limits.js';
import { MAX_VIEWER_IDS, type ViewerScope } from '../tasks/viewer-scope.js';

/**
 * The protected header `typ` of a viewer token. The header is signed, so a
 * viewer token cannot be made to pass as a full token, nor the reverse.
 */
export const VIEWER_TOKEN_TYPE = 'task-viewer+jwt';
export const VIEWER_TOKEN_AUDIENCE = 'task-viewer';

/** The claims of a viewer token. */
export interface ViewerTokenClaims {
  /** The user who created it. */
  sub: string;
  /** The tenant of every task in scope. */
  tenant: string;
  scope: ViewerScope;
  aud: typeof VIEWER_TOKEN_AUDIENCE;
  iat: number;
  exp: number;
}

export interface ViewerTokenRequest {
  userId: string;
  tenantCode: string;
  scope: ViewerScope;
  ttlSeconds: number;
}

export interface MintedViewerToken {
  token: string;
  expiresAt: Date;
}

/** Signs viewer tokens (createViewerToken); absent when no viewer secret is configured. */
export interface ViewerTokenIssuer {
  mint(request: ViewerTokenRequest): Promise<MintedViewerToken>;
}

export function createViewerTokenIssuer(secret: string, now: () => number = Date.now): ViewerTokenIssuer {
  const key = new TextEncoder().encode(secret);
  return {
    async mint({ userId, tenantCode, scope, ttlSeconds }) {
      const iat = Math.floor(now() / 1000);
      const exp = iat + ttlSeconds;
      const claims: Pick<ViewerTokenClaims, 'tenant' | 'scope'> = {
        tenant: tenantCode,
        scope: scope.parentId === undefined ? { ids: [...scope.ids] } : { ids: [...scope.ids], parentId: scope.parentId },
      };
      const token = await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: 'HS256', typ: VIEWER_TOKEN_TYPE })
        .setSubject(userId)
        .setAudience(VIEWER_TOKEN_AUDIENCE)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(key);
      return { token, expiresAt: new Date(exp * 1000) };
    },
  };
}

/** The issuer, or the FORBIDDEN answer of a server that has no secret to sign viewer tokens with. */
export function requireViewerIssuer(issuer: ViewerTokenIssuer | undefined): ViewerTokenIssuer {
  if (issuer) return issuer;
  throw forbidden('Viewer tokens need VIEWER_TOKEN_SECRET: this server verifies tokens with JWKS_URL only');
}

/** Whether a protected header's `typ` names a viewer token (compared as jose does: case-insensitive, `application/` optional). */
export const isViewerTokenType = (typ: unknown): boolean =>
  typeof typ === 'string' && typ.toLowerCase().replace(/^application\//, '') === VIEWER_TOKEN_TYPE;

/**
 * The user, tenant and scope of a verified viewer token's payload, or
 * undefined when a claim is not in the shape createViewerTokenIssuer writes
 * (every id a task id of the token's tenant).
 */
export function readViewerClaims(payload: JWTPayload): { userId: string; tenantCode: string; scope: ViewerScope } | undefined {
  const { sub, tenant, scope } = payload as Partial<Record<string, unknown>>;
  if (typeof sub !== 'string' || sub === '' || typeof tenant !== 'string' || !CODE_PATTERN.test(tenant)) return undefined;
  if (typeof scope !== 'object' || scope === null || Array.isArray(scope)) return undefined;
  const { ids, parentId } = scope as Record<string, unknown>;
  if (!Array.isArray(ids) || ids.length > MAX_VIEWER_IDS) return undefined;
  if (parentId !== undefined && typeof parentId !== 'string') return undefined;
  if (ids.length === 0 && parentId === undefined) return undefined;
  const ofTenant = (id: unknown) => typeof id === 'string' && parseTaskId(id)?.tenantCode === tenant;
  if (!ids.every(ofTenant) || (parentId !== undefined && !ofTenant(parentId))) return undefined;
  return {
    userId: sub,
    tenantCode: tenant,
    scope: parentId === undefined ? { ids: ids as string[] } : { ids: ids as string[], parentId },
  };
}
