import { CloudFormationClient, CreateStackCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { LambdaClient, ListEventSourceMappingsCommand } from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStreamEventSource } from '../../local/stream-source';
import { discover, isDynamoStreamArn } from '../../local/topology';
import { startMoto, testCredentials, type Moto } from '../helpers/moto';

/**
 * Topology discovery of a DynamoDB stream mapping from a stack deployed into moto (a small
 * template shaped like what CDK synthesizes for a DynamoEventSource), then the discovered
 * source run against the table.
 */
const region = 'us-east-1';
let moto: Moto;

const PATTERN = '{"eventName":["MODIFY","INSERT"],"dynamodb":{"NewImage":{"status":{"S":["succeeded","failed","cancelled"]}}}}';

const template = {
  Resources: {
    NotifierRole: {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      },
    },
    Notifier: {
      Type: 'AWS::Lambda::Function',
      Metadata: { 'aws:asset:path': 'asset.notifier' },
      Properties: {
        Runtime: 'nodejs20.x',
        Handler: 'index.handler',
        Role: { 'Fn::GetAtt': ['NotifierRole', 'Arn'] },
        Code: { ZipFile: 'exports.handler = async () => null;' },
        Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'offload-notifier' } },
      },
    },
    JobsTable: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        AttributeDefinitions: [{ AttributeName: 'jobId', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'jobId', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      },
    },
    NotifierFailures: { Type: 'AWS::SQS::Queue' },
    NotifierStream: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'Notifier' },
        EventSourceArn: { 'Fn::GetAtt': ['JobsTable', 'StreamArn'] },
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: 25,
        MaximumBatchingWindowInSeconds: 1,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 0,
        MaximumRecordAgeInSeconds: 3600,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['NotifierFailures', 'Arn'] } } },
        FilterCriteria: { Filters: [{ Pattern: PATTERN }] },
      },
    },
    Api: { Type: 'AWS::ApiGateway::RestApi', Properties: { Name: 'stream-topology' } },
  },
};

beforeAll(async () => {
  moto = await startMoto();
}, 60_000);

afterAll(async () => {
  await moto?.stop();
});

describe('topology: DynamoDB stream event sources', () => {
  it('reads the mapping from the deployed stack, resolves its OnFailure queue, disables it in moto, and the source it describes runs', async () => {
    const cfg = { endpoint: moto.endpoint, region, credentials: testCredentials };
    const cfn = new CloudFormationClient(cfg);
    await cfn.send(new CreateStackCommand({ StackName: 'StreamTopology', TemplateBody: JSON.stringify(template) }));
    expect((await cfn.send(new DescribeStacksCommand({ StackName: 'StreamTopology' }))).Stacks?.[0].StackStatus).toBe('CREATE_COMPLETE');

    const lines: string[] = [];
    const topology = await discover({
      endpoint: moto.endpoint,
      region,
      stackName: 'StreamTopology',
      template,
      cloudAssembly: '/nonexistent',
      credentials: testCredentials,
      log: (l) => lines.push(l),
    });
    const sqs = new SQSClient(cfg);
    expect(topology.eventSources).toEqual([]);
    expect(topology.streamSources).toHaveLength(1);
    const [ss] = topology.streamSources;
    expect(isDynamoStreamArn(ss.streamArn)).toBe(true);
    const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: ss.onFailure!.queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
    expect(ss).toEqual({
      label: 'notifier',
      functionArn: [...topology.functions.keys()][0],
      streamArn: expect.stringMatching(/:table\/.+\/stream\//),
      region,
      startingPosition: 'TRIM_HORIZON',
      batchSize: 25,
      batchingWindowSeconds: 1,
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 0,
      maximumRecordAgeSeconds: 3600,
      reportBatchItemFailures: true,
      filterPatterns: [PATTERN],
      onFailure: { destinationArn: dlqArn, queueUrl: expect.any(String) },
    });
    const mappings = await new LambdaClient(cfg).send(new ListEventSourceMappingsCommand({}));
    expect(mappings.EventSourceMappings?.map((m) => m.State)).toEqual(['Disabled']);

    // The discovered source, with a fake function, against the deployed table.
    const ddb = new DynamoDBClient(cfg);
    const tableName = ss.streamArn.split(':table/')[1].split('/')[0];
    const events: DynamoDBStreamEvent[] = [];
    // It fails on any batch holding j4: bisection isolates j4, which (no retries) goes to the queue.
    const source = new DynamoStreamEventSource(new DynamoDBStreamsClient(cfg), sqs, ss, async (event) => {
      events.push(event);
      if (event.Records.some((r) => r.dynamodb!.NewImage!.jobId.S === 'j4')) {
        return { ok: false, kind: 'error', error: { errorType: 'Error', errorMessage: 'boom' }, ms: 1 };
      }
      return { ok: true, result: null, ms: 1 };
    });
    source.start();
    try {
      for (const [jobId, status] of [
        ['j1', 'queued'],
        ['j2', 'succeeded'],
        ['j3', 'running'],
        ['j4', 'failed'],
      ]) {
        await ddb.send(new PutItemCommand({ TableName: tableName, Item: { jobId: { S: jobId }, status: { S: status } } }));
      }
      await expect.poll(() => source.stats.sentToDestination, { timeout: 10_000 }).toBe(1);
      expect(source.stats).toMatchObject({ filteredOut: 2, succeeded: 1, discarded: 1 });
      const j4 = events.flatMap((e) => e.Records).find((r) => r.dynamodb!.NewImage!.jobId.S === 'j4')!;
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: ss.onFailure!.queueUrl, WaitTimeSeconds: 1 }));
      expect(JSON.parse(got.Messages![0].Body!).DDBStreamBatchInfo).toMatchObject({ batchSize: 1, startSequenceNumber: j4.dynamodb!.SequenceNumber, streamArn: ss.streamArn });
    } finally {
      await source.stop();
    }
  });
});
