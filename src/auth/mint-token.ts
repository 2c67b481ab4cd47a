import { SignJWT } from 'jose';

export interface MintOptions {
  secret: string;
  tenantCode: string;
  userId: string;
  admin?: boolean;
  /** Lifetime, in jose's notation: '1h', '30d'. */
  expiresIn?: string;
  issuer?: string;
  audience?: string;
  claims?: { user: string; tenant: string; roles: string };
}

/** An HS256 token in the shape the verifier reads (Cognito-style claim names by default). */
export function mintToken(options: MintOptions): Promise<string> {
  const claims = options.claims ?? { user: 'sub', tenant: 'custom:tenant', roles: 'custom:roles' };
  const payload: Record<string, unknown> = {
    [claims.tenant]: options.tenantCode,
    [claims.roles]: options.admin ? ['system_admin'] : [],
  };
  if (claims.user !== 'sub') payload[claims.user] = options.userId;
  let jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.userId)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '12h');
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
