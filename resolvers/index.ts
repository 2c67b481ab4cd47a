import { builder } from './builder.js';
import './task.js';

export const schema = builder.toSchema({ sortSchema: true });
