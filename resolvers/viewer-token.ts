import { requireViewerIssuer, type MintedViewerToken } from '../src/auth/viewer-token.js';
import {
  DEFAULT_VIEWER_TTL_SECONDS,
  MAX_VIEWER_IDS,
  MAX_VIEWER_TTL_SECONDS,
  resolveViewerGrant,
  type ViewerScope,
} from '../src/tasks/viewer-scope.js';
import { builder } from './builder.js';

type ViewerToken = MintedViewerToken & ViewerScope;

const ViewerTokenRef = builder.objectRef<ViewerToken>('ViewerToken').implement({
  description: 'A short-lived token that can only read and watch the tasks it names (for a browser)',
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Send as `Authorization: Bearer <token>`, or in connection_init over WebSocket' }),
    expiresAt: t.field({ type: 'DateTime', resolve: (minted) => minted.expiresAt }),
    ids: t.idList({ description: 'The tasks it may read and watch', resolve: (minted) => [...minted.ids] }),
    parentId: t.id({
      nullable: true,
      description: 'A Step Functions task it may read and watch with its sub-tasks',
      resolve: (minted) => minted.parentId ?? null,
    }),
  }),
});

builder.mutationFields((t) => ({
  createViewerToken: t.field({
    type: ViewerTokenRef,
    description: `A token that can only read (task, subTasks) and watch (taskStatusChanged by ids or parentId) the named tasks of one tenant; every other operation with it is FORBIDDEN. At least one of ids (at most ${MAX_VIEWER_IDS}) and parentId.`,
    args: {
      ids: t.arg.idList({ description: 'Tasks or sub-tasks the caller can read, all of one tenant' }),
      parentId: t.arg.id({ description: 'A Step Functions task: it and its sub-tasks' }),
      ttlSeconds: t.arg.int({
        description: `Lifetime, ${DEFAULT_VIEWER_TTL_SECONDS} (15 minutes) by default, at most ${MAX_VIEWER_TTL_SECONDS} (24 hours)`,
      }),
    },
    resolve: async (_root, args, ctx) => {
      const issuer = requireViewerIssuer(ctx.viewerTokens);
      const grant = await resolveViewerGrant(ctx.tasks, ctx.actor, {
        ids: args.ids?.map(String),
        parentId: args.parentId?.toString(),
        ttlSeconds: args.ttlSeconds,
      });
      const minted = await issuer.mint({ userId: ctx.actor.userId, ...grant });
      return { ...minted, ...grant.scope };
    },
  }),
}));
