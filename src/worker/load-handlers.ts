import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HandlerMap } from './handlers.js';

/**
 * Loads HANDLERS_MODULE: a module exporting `handlers` and/or
 * `subTaskHandlers`, each mapping a task type to a handler.
 */
export async function loadHandlersModule(path: string): Promise<{ handlers: HandlerMap; subTaskHandlers: HandlerMap }> {
  const module = (await import(pathToFileURL(resolve(process.cwd(), path)).href)) as {
    handlers?: HandlerMap;
    subTaskHandlers?: HandlerMap;
    default?: { handlers?: HandlerMap; subTaskHandlers?: HandlerMap };
  };
  const handlers = module.handlers ?? module.default?.handlers ?? {};
  const subTaskHandlers = module.subTaskHandlers ?? module.default?.subTaskHandlers ?? {};
  if (Object.keys(handlers).length + Object.keys(subTaskHandlers).length === 0) {
    throw new Error(`${path} exports no handlers: export \`handlers\` and/or \`subTaskHandlers\``);
  }
  return { handlers, subTaskHandlers };
}
