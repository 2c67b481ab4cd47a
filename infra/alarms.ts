import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';

export interface AlarmsProps {
  readonly alarmTopic: sns.ITopic;
  readonly deadLetterQueue: sqs.IQueue;
  /** Stream mode: the stream event source's on-failure destination. */
  readonly streamDeadLetterQueue?: sqs.IQueue;
  readonly functions: readonly lambda.IFunction[];
  readonly stateMachine: sfn.IStateMachine;
  readonly loadBalancer: elbv2.IApplicationLoadBalancer;
  /** 5xx answers (ALB and targets together) per five minutes that raise the alarm. */
  readonly http5xxThreshold: number;
}

/**
 * Operator alarms, all to the alarm topic (where the service also publishes
 * `sfn-alarm` for every failed task). Missing data is not breaching: no
 * traffic is not an incident.
 */
export function createAlarms(scope: Construct, props: AlarmsProps): cloudwatch.Alarm[] {
  const period = Duration.minutes(5);
  const anyAbove = (id: string, description: string, metric: cloudwatch.IMetric, threshold = 0) =>
    new cloudwatch.Alarm(scope, id, {
      alarmDescription: description,
      metric,
      threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

  const alarms = [
    anyAbove(
      'DeadLetterAlarm',
      'task-execute messages reached the dead-letter queue: a task could not be run within maxReceiveCount receives',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
    ),
    ...(props.streamDeadLetterQueue
      ? [
          anyAbove(
            'StreamDeadLetterAlarm',
            'The stream handler gave up on table stream records (retries exhausted): those changes were not published; the queue holds their shard and sequence numbers',
            props.streamDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
          ),
        ]
      : []),
    ...props.functions.map((fn) =>
      anyAbove(
        `${fn.node.id}ErrorsAlarm`,
        `${fn.node.id} failed invocations (handler errors are task outcomes; these are crashes, timeouts, bad config)`,
        fn.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
      ),
    ),
    anyAbove(
      'SubTasksFailedAlarm',
      'Sub-task state machine executions failed (the runner exhausted its retries)',
      props.stateMachine.metricFailed({ period, statistic: cloudwatch.Stats.SUM }),
    ),
    anyAbove(
      'Http5xxAlarm',
      '5xx answers from the load balancer or the GraphQL server',
      new cloudwatch.MathExpression({
        expression: 'FILL(elb, 0) + FILL(target, 0)',
        usingMetrics: {
          elb: props.loadBalancer.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period, statistic: cloudwatch.Stats.SUM }),
          target: props.loadBalancer.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period,
            statistic: cloudwatch.Stats.SUM,
          }),
        },
        period,
        label: 'ALB and target 5xx',
      }),
      props.http5xxThreshold,
    ),
  ];
  const action = new actions.SnsAction(props.alarmTopic);
  for (const alarm of alarms) alarm.addAlarmAction(action);
  return alarms;
}
