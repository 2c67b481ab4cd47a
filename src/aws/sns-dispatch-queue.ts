import type { Task } from '../tasks/task.js';
import type { DispatchQueue } from '../worker/task-dispatcher.js';
import type { SnsTopic } from './sns-topic.js';

/** The message an SQS queue subscribed with the filter `{ "action": ["task-execute"] }` receives. */
export interface TaskExecuteMessage {
  action: 'task-execute';
  id: string;
  pk: string;
  sk: string;
  tenantCode: string;
  type: string;
  kind: Task['kind'];
}

/**
 * AWS: a queued task is announced on the SNS topic as `task-execute`; the SQS
 * queue subscribed to it (filter on `action`) delivers it to a worker. Retries
 * are not re-published: the worker delays the SQS message itself.
 */
export class SnsDispatchQueue implements DispatchQueue {
  constructor(private readonly topic: SnsTopic) {}

  async enqueue(task: Pick<Task, 'id' | 'pk' | 'sk' | 'tenantCode' | 'type' | 'kind'>): Promise<void> {
    const message: TaskExecuteMessage = {
      action: 'task-execute',
      id: task.id,
      pk: task.pk,
      sk: task.sk,
      tenantCode: task.tenantCode,
      type: task.type,
      kind: task.kind,
    };
    await this.topic.publish(message, { taskType: task.type });
  }
}
