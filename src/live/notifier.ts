import type { SnsTopic } from '../aws/sns-topic.js';
import { BackgroundWork } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import type { TaskChange, TaskPublisher } from '../tasks/publisher.js';
import { failureAlarmOf, notificationOf } from './notification.js';
import type { TaskEventBus } from './task-event-bus.js';

export interface NotifierOptions {
  table: string;
  /** This process's subscribers get every change at once, whatever else is configured. */
  bus: TaskEventBus;
  /** SNS_TOPIC_ARN: other replicas and outside consumers. */
  topic?: SnsTopic;
  /** SNS_ALARM_TOPIC_ARN: the original's alarm for failed tasks. */
  alarmTopic?: SnsTopic;
  logger: Logger;
}

/**
 * The TaskPublisher behind every write: dispatches the change in-process and
 * publishes it to SNS in the background (retried there), plus an alarm when a
 * task fails. SNS latency and outages never slow or fail a mutation.
 */
export class Notifier implements TaskPublisher {
  private readonly background = new BackgroundWork();

  constructor(private readonly options: NotifierOptions) {}

  async publish(change: TaskChange): Promise<void> {
    const { table, bus, topic, alarmTopic, logger } = this.options;
    const notification = notificationOf(change, table);
    await bus.dispatch(notification);
    if (topic) this.background.track(topic.publish(notification));
    const alarm = failureAlarmOf(change, table);
    if (alarm) {
      logger.warn('task failed', { id: alarm.id, errorMessage: alarm.content.errorMessage });
      if (alarmTopic) this.background.track(alarmTopic.publish(alarm));
    }
  }

  /** Waits for background publishes; called on graceful shutdown. */
  flush(): Promise<void> {
    return this.background.drain();
  }
}
