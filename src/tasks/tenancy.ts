import { forbidden } from '../errors.js';
import { checkTenantCode } from './limits.js';
import type { Actor } from './task.js';

/**
 * The tenant an operation acts on. A `tenantCode` argument only ever narrows
 * what the token allows: a non-admin may name its own tenant, nobody else's.
 */
export function resolveTenant(actor: Actor, requested?: string | null): string {
  if (requested === undefined || requested === null || requested === actor.tenantCode) return actor.tenantCode;
  if (!actor.isAdmin) throw forbidden(`Tenant ${actor.tenantCode} may not act on tenant ${requested}`);
  checkTenantCode(requested);
  return requested;
}

export const canAccessTenant = (actor: Actor, tenantCode: string): boolean => actor.isAdmin || actor.tenantCode === tenantCode;
