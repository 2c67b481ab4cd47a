import { Stack, type StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type { Construct } from 'constructs';
import { TaskGraphQLService, type TaskGraphQLServiceProps } from './task-graphql-service.js';

export interface TasksStackProps extends StackProps {
  /**
   * The service's settings.
   * @default TaskGraphQLService's defaults
   */
  readonly service?: TaskGraphQLServiceProps;
  /**
   * An ACM certificate (in the stack's region) for the load balancer: HTTPS, HTTP redirected.
   * Overrides `service.certificate`.
   * @default none: plain HTTP
   */
  readonly certificateArn?: string;
}

/** One stack holding the task service. */
export class TasksStack extends Stack {
  readonly service: TaskGraphQLService;

  constructor(scope: Construct, id: string, props: TasksStackProps = {}) {
    super(scope, id, props);
    const certificate = props.certificateArn
      ? acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn)
      : props.service?.certificate;
    this.service = new TaskGraphQLService(this, 'Tasks', { ...props.service, certificate });
  }
}
