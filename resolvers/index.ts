import { builder } from './builder.js';
import './task.js';
import './task-actions.js';
import './task-events.js';
import './viewer-token.js';

export const schema = builder.toSchema({ sortSchema: true });
