import { parseArgs } from 'node:util';
import { mintToken } from '../src/auth/mint-token.js';
import { loadConfig } from '../src/config.js';
import { loadDevSecret } from '../src/embedded/dev-secret.js';

/**
 * npm run token -- --tenant X --user Y [--admin] [--expires 12h]
 * Signs with JWT_SECRET, or with the embedded default's development secret.
 */
const { values } = parseArgs({
  options: {
    tenant: { type: 'string', default: 'demo' },
    user: { type: 'string', default: 'dev' },
    admin: { type: 'boolean', default: false },
    expires: { type: 'string', default: '12h' },
  },
});
const config = loadConfig();
if (config.auth.jwksUrl) {
  console.error('JWKS_URL is set: tokens come from your identity provider, not from this script');
  process.exit(1);
}
const secret = config.auth.secret ?? (config.storage.mode === 'embedded' ? await loadDevSecret(config.storage.dataDir) : undefined);
if (!secret) {
  console.error('Set JWT_SECRET');
  process.exit(1);
}
console.log(
  await mintToken({
    secret,
    tenantCode: values.tenant!,
    userId: values.user!,
    admin: values.admin,
    expiresIn: values.expires,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    claims: config.auth.claims,
  }),
);
