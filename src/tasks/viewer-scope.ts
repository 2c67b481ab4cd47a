import { badInput, forbidden, notFound } from '../errors.js';
import { parseTaskId, requireTaskId, type ParsedTaskId } from './keys.js';
import type { Actor } from './task.js';
import type { TaskService } from './task-service.js';

/**
 * What a viewer token may read and watch: the tasks it names and, with
 * `parentId`, that Step Functions task and its sub-tasks. Nothing else, and
 * no write at all.
 */
export interface ViewerScope {
  readonly ids: readonly string[];
  readonly parentId?: string;
}

/** Tasks one viewer token may name. */
export const MAX_VIEWER_IDS = 100;
/** 15 minutes. */
export const DEFAULT_VIEWER_TTL_SECONDS = 900;
/** 24 hours. */
export const MAX_VIEWER_TTL_SECONDS = 86_400;

/** FORBIDDEN for a viewer: the operation needs a full token. */
export function assertFullAccess(actor: Actor, action: string): void {
  if (actor.scope) throw forbidden(`A viewer token may not ${action}`);
}

/** Whether a scope covers a task id: named, its parent, or one of that parent's sub-tasks. */
export function scopeCovers(scope: ViewerScope, id: string, parsed: ParsedTaskId | undefined = parseTaskId(id)): boolean {
  if (scope.ids.includes(id)) return true;
  if (scope.parentId === undefined || !parsed) return false;
  return id === scope.parentId || parsed.parentId === scope.parentId;
}

/** A viewer may read only the tasks its scope covers; anyone else passes (tenancy is checked apart). */
export function assertCanView(actor: Actor, id: string, parsed?: ParsedTaskId): void {
  if (actor.scope && !scopeCovers(actor.scope, id, parsed)) throw forbidden('A viewer token may not read this task');
}

/** A viewer may list the sub-tasks of its own parentId only. */
export function assertCanViewSubTasksOf(actor: Actor, parentId: string): void {
  if (actor.scope && parentId !== actor.scope.parentId) {
    throw forbidden('A viewer token may list the sub-tasks of its parentId only');
  }
}

/** The parts of a live filter that decide which tasks it reaches. */
export interface WatchFilter {
  ids?: readonly string[] | null;
  parentId?: string | null;
}

/**
 * A viewer may watch named tasks within its scope and/or its parentId's
 * family; a filter with neither (kind, taskType, statuses or tenantCode
 * alone, or none) reaches the whole tenant and is FORBIDDEN. Other fields
 * with ids or parentId only narrow further.
 */
export function assertCanWatch(actor: Actor, filter: WatchFilter): void {
  const { scope } = actor;
  if (!scope) return;
  const ids = filter.ids ?? [];
  const parentId = filter.parentId ?? undefined;
  if (ids.length === 0 && parentId === undefined) {
    throw forbidden('A viewer token may watch only its own tasks: filter by ids or parentId within its scope');
  }
  if (parentId !== undefined && parentId !== scope.parentId) {
    throw forbidden('A viewer token may watch the parentId it was created for only');
  }
  if (!ids.every((id) => scopeCovers(scope, id))) throw forbidden('A viewer token may not watch these tasks');
}

export interface ViewerTokenRequest {
  ids?: readonly string[] | null;
  parentId?: string | null;
  ttlSeconds?: number | null;
}

/** What a viewer token is minted with, once the request is checked. */
export interface ViewerGrant {
  tenantCode: string;
  scope: ViewerScope;
  ttlSeconds: number;
}

/**
 * Checks a createViewerToken request against what the caller may read: every
 * named task (and the parent) must exist and be readable by the caller
 * (another tenant's task is NOT_FOUND, as for a missing one), all in one
 * tenant, and `parentId` must name a Step Functions task. The grant is for
 * the tasks' tenant, so a system_admin may create one for any tenant.
 */
export async function resolveViewerGrant(tasks: TaskService, actor: Actor, request: ViewerTokenRequest): Promise<ViewerGrant> {
  assertFullAccess(actor, 'create viewer tokens');
  const ttlSeconds = request.ttlSeconds ?? DEFAULT_VIEWER_TTL_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_VIEWER_TTL_SECONDS) {
    throw badInput(`ttlSeconds must be 1-${MAX_VIEWER_TTL_SECONDS} (24 hours); it defaults to ${DEFAULT_VIEWER_TTL_SECONDS}`, {
      field: 'ttlSeconds',
    });
  }
  if ((request.ids?.length ?? 0) > MAX_VIEWER_IDS) throw badInput(`ids names at most ${MAX_VIEWER_IDS} tasks`, { field: 'ids' });
  const ids = [...new Set(request.ids ?? [])];
  const parentId = request.parentId ?? undefined;
  if (ids.length === 0 && parentId === undefined) {
    throw badInput('Name the tasks the token may read: ids, parentId or both', { field: 'ids' });
  }

  const named = ids.map((id) => ({ id, parsed: requireTaskId(id, 'ids') }));
  if (parentId !== undefined) named.push({ id: parentId, parsed: requireTaskId(parentId, 'parentId') });
  // Another tenant's task reads exactly like a missing one, before anything else is said about it.
  for (const { id, parsed } of named) {
    if (!actor.isAdmin && parsed.tenantCode !== actor.tenantCode) throw notFound(`Task ${id} not found`);
  }
  const tenants = new Set(named.map(({ parsed }) => parsed.tenantCode));
  if (tenants.size > 1) throw badInput('A viewer token covers tasks of one tenant', { field: 'ids' });

  const found = await Promise.all(named.map(({ id }) => tasks.getTask(actor, id)));
  found.forEach((task, index) => {
    if (!task) throw notFound(`Task ${named[index]!.id} not found`);
  });
  if (parentId !== undefined) {
    const parent = found.at(-1)!;
    if (parent.kind !== 'SFN_TASK' || parent.parentId) {
      throw badInput('parentId must name a Step Functions task (kind SFN_TASK, not a sub-task)', { field: 'parentId' });
    }
  }
  return {
    tenantCode: named[0]!.parsed.tenantCode,
    scope: parentId === undefined ? { ids } : { ids, parentId },
    ttlSeconds,
  };
}
