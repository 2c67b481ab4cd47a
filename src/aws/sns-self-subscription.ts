import { SubscribeCommand, UnsubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';

/**
 * Subscribes this replica's `/sns` endpoint to the topic, so every replica
 * receives every notification for its own WebSocket clients. The confirmation
 * arrives at the endpoint and is confirmed there. Returns the unsubscribe step
 * for graceful shutdown.
 */
export async function subscribeSelf(sns: SNSClient, topicArn: string, publicUrl: string): Promise<() => Promise<void>> {
  const endpoint = `${publicUrl}/sns`;
  const { SubscriptionArn } = await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: endpoint.startsWith('https:') ? 'https' : 'http',
      Endpoint: endpoint,
      ReturnSubscriptionArn: true,
    }),
  );
  return async () => {
    if (SubscriptionArn && SubscriptionArn !== 'pending confirmation') {
      await sns.send(new UnsubscribeCommand({ SubscriptionArn }));
    }
  };
}
