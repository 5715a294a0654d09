import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMoto, testCredentials, type Moto } from '../helpers/moto';

/**
 * Local mode's moto behaves as SNS does for a subscriber that is gone: Publish still
 * succeeds and the other subscribers still get the message (moto alone fails the Publish,
 * which blocked every later notification of a local-mode stack once a test deleted its
 * subscriber queue).
 */
let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
}, 120_000);
afterAll(async () => {
  await moto?.stop();
});

describe('moto as local mode runs it: SNS delivery', () => {
  it('publishes past a subscribed queue that was deleted, to the subscribers still there', async () => {
    const cfg = { endpoint: moto.endpoint, region: 'us-east-1', credentials: testCredentials };
    const sns = new SNSClient(cfg);
    const sqs = new SQSClient(cfg);
    const topic = (await sns.send(new CreateTopicCommand({ Name: 'deliveries' }))).TopicArn!;
    const subscribe = async (name: string) => {
      const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
      const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
      await sns.send(new SubscribeCommand({ TopicArn: topic, Protocol: 'sqs', Endpoint: arn, Attributes: { RawMessageDelivery: 'true' } }));
      return url;
    };
    const gone = await subscribe('gone');
    const kept = await subscribe('kept');
    await sqs.send(new DeleteQueueCommand({ QueueUrl: gone }));

    const out = await sns.send(new PublishCommand({ TopicArn: topic, Message: 'hello' }));
    expect(out.MessageId).toBeTruthy();
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: kept, WaitTimeSeconds: 5 }));
    expect(got.Messages?.map((m) => m.Body)).toEqual(['hello']);
  });
});
