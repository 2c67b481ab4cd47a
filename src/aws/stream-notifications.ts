import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { isDeepStrictEqual } from 'node:util';
import { failureAlarmOf, notificationOf } from '../live/notification.js';
import type { Logger } from '../logger.js';
import { kindOfPk } from '../tasks/keys.js';
import type { TaskChange } from '../tasks/publisher.js';
import { INDEX_ATTRIBUTES } from './task-table-schema.js';
import { fromItem, staleIndexKeys, type DynamoTaskStore } from './dynamo-task-store.js';
import type { SnsTopic } from './sns-topic.js';

type Item = Record<string, unknown>;

/** A DynamoDB stream record as Lambda delivers it (StreamViewType NEW_AND_OLD_IMAGES). */
export interface DynamoDbStreamRecord {
  eventID?: string;
  eventName?: 'INSERT' | 'MODIFY' | 'REMOVE';
  eventSourceARN?: string;
  dynamodb?: {
    Keys?: Record<string, AttributeValue>;
    NewImage?: Record<string, AttributeValue>;
    OldImage?: Record<string, AttributeValue>;
    SequenceNumber?: string;
  };
}

/** What happened to one record; the test and the logs read it. */
export type StreamOutcome =
  | { action: 'published'; id: string; version: number; repaired: boolean }
  | { action: 'skipped'; reason: 'not-a-task' | 'removed' | 'repair-echo' | 'superseded' };

export interface StreamNotifierOptions {
  store: DynamoTaskStore;
  /** Named in every notification's `table`. */
  table: string;
  /** SNS_TOPIC_ARN: every task change, in the shape the service publishes (notificationOf). */
  topic: SnsTopic;
  /** SNS_ALARM_TOPIC_ARN: the original's alarm when a task moves to FAILED. */
  alarmTopic?: SnsTopic;
  logger: Logger;
}

/** Attributes an index-key repair writes: a change to nothing else is the repair's own echo. */
const REPAIR_ATTRIBUTES = new Set(['version', ...INDEX_ATTRIBUTES]);

/**
 * An empty map arrives as `{}` from DynamoDB Local's stream (DynamoDB writes
 * `{ "M": {} }`); a value with no type is read as that. Items nest at most 32
 * levels, so the recursion is bounded.
 */
function normalized(value: AttributeValue): AttributeValue {
  if (Object.keys(value).length === 0) return { M: {} };
  if (value.M) return { M: normalizedMap(value.M) };
  if (value.L) return { L: value.L.map(normalized) };
  return value;
}
const normalizedMap = (map: Record<string, AttributeValue>) =>
  Object.fromEntries(Object.entries(map).map(([name, value]) => [name, normalized(value)]));

// Numbers as plain numbers, as the store's document client reads them.
const imageOf = (image: Record<string, AttributeValue>): Item =>
  unmarshall(normalizedMap(image), { wrapNumbers: (value: string) => Number(value) }) as Item;

function withoutRepairAttributes(item: Item): Item {
  return Object.fromEntries(Object.entries(item).filter(([name]) => !REPAIR_ATTRIBUTES.has(name)));
}

/**
 * Notifications from the table's stream, for every writer: each change of a
 * task is published to SNS in the service's own shape, so changes made by
 * another writer (the original package, a script, the console) reach
 * subscribers too. On the way, list-index attributes that disagree with the
 * item are repaired with an UpdateItem pinned to the image's version and
 * updatedAt, which never overwrites a newer change; a change that kept the
 * version gets the next one, so subscribers (who drop versions they already
 * have) see it. The repair's own stream record is recognized and not published again.
 */
export class StreamNotifier {
  constructor(private readonly options: StreamNotifierOptions) {}

  async handle(record: DynamoDbStreamRecord): Promise<StreamOutcome> {
    const { store, table, topic, alarmTopic, logger } = this.options;
    const newImage = record.dynamodb?.NewImage;
    if (record.eventName === 'REMOVE' || !newImage) return { action: 'skipped', reason: 'removed' };
    const item = imageOf(newImage);
    if (typeof item.pk !== 'string' || typeof item.sk !== 'string' || !kindOfPk(item.pk) || typeof item.status !== 'string') {
      return { action: 'skipped', reason: 'not-a-task' };
    }
    const old = record.dynamodb?.OldImage ? imageOf(record.dynamodb.OldImage) : undefined;
    if (old && isDeepStrictEqual(withoutRepairAttributes(old), withoutRepairAttributes(item))) {
      return { action: 'skipped', reason: 'repair-echo' };
    }

    const version = (image: Item | undefined) => (typeof image?.version === 'number' ? image.version : 0);
    const keptVersion = old !== undefined && version(item) <= version(old);
    const stale = staleIndexKeys(item);
    let task = fromItem(item);
    let repaired = false;
    if (keptVersion || Object.keys(stale.set).length > 0 || stale.remove.length > 0) {
      const fixed = await store.repairIndexKeys(item, { bumpVersion: keptVersion });
      // Changed again since this image: that change has its own record, repaired and published in turn.
      if (!fixed) return { action: 'skipped', reason: 'superseded' };
      task = fixed;
      repaired = true;
    }

    const change: TaskChange = { task, previous: old ? fromItem(old) : undefined, created: old === undefined };
    await topic.publish(notificationOf(change, table));
    const alarm = failureAlarmOf(change, table);
    if (alarm) {
      logger.warn('task failed', { id: alarm.id, errorMessage: alarm.content.errorMessage });
      await alarmTopic?.publish(alarm);
    }
    return { action: 'published', id: task.id, version: task.version, repaired };
  }
}
