import { execute, type GraphQLError, Kind, print, visit, type DocumentNode, type ExecutionResult, type GraphQLResolveInfo } from 'graphql';
import type { TaskStatusEvent } from './task-event.js';

/**
 * A subscription's selection, runnable once per event and shareable by every
 * subscriber whose selection (and the variables it reads) is the same: the
 * fan-out executes it once per distinct key, not once per subscriber.
 */
export interface SharedOperation {
  key: string;
  /** Executes the selection with the event as root; errors already masked. */
  execute(event: TaskStatusEvent): Promise<ExecutionResult>;
}

/**
 * Subscribers of one parsed operation (yoga caches documents by text) with the
 * same tenant and selection variables share one SharedOperation, so ten
 * thousand identical subscriptions hold one key and one document, not ten thousand.
 */
const shared = new WeakMap<object, Map<string, WeakRef<SharedOperation>>>();

export function sharedOperation(
  info: GraphQLResolveInfo,
  shareKey: string,
  /** The execution's own context, made once per operation: never a subscriber's, which would answer for one user to all. */
  contextFor: () => object,
  mask: (error: GraphQLError) => GraphQLError,
): SharedOperation {
  let byVariables = shared.get(info.operation);
  if (!byVariables) shared.set(info.operation, (byVariables = new Map()));
  const cacheKey = `${shareKey}\u0000${JSON.stringify(info.variableValues)}`;
  const cached = byVariables.get(cacheKey)?.deref();
  if (cached) return cached;
  const operation = createSharedOperation(info, contextFor(), shareKey, mask);
  byVariables.set(cacheKey, new WeakRef(operation));
  if (byVariables.size > 1000) for (const [key, ref] of byVariables) if (!ref.deref()) byVariables.delete(key);
  return operation;
}

function createSharedOperation(
  info: GraphQLResolveInfo,
  contextValue: object,
  shareKey: string,
  mask: (error: GraphQLError) => GraphQLError,
): SharedOperation {
  const document: DocumentNode = { kind: Kind.DOCUMENT, definitions: [info.operation, ...Object.values(info.fragments)] };
  // The root field's arguments (the filter) do not shape the result: only its
  // response key, its selection, the fragments and the variables they read do.
  const selections = info.fieldNodes.map((field) => [field.alias?.value ?? field.name.value, print(field.selectionSet!)]);
  const fragments = Object.values(info.fragments).map((fragment) => print(fragment));
  const used = new Set<string>();
  for (const node of [...info.fieldNodes.map((field) => field.selectionSet!), ...Object.values(info.fragments)]) {
    visit(node, { Variable: (variable) => void used.add(variable.name.value) });
  }
  const variables = [...used].sort().map((name) => [name, info.variableValues[name]]);
  const key = JSON.stringify([shareKey, selections, fragments, variables]);
  return {
    key,
    async execute(event) {
      const result = await execute({
        schema: info.schema,
        document,
        rootValue: event,
        contextValue,
        variableValues: info.variableValues,
        operationName: info.operation.name?.value,
      });
      return result.errors ? { ...result, errors: result.errors.map(mask) } : result;
    },
  };
}
