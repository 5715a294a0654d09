import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * SDK clients, created once per execution environment. The endpoint is the SDK's own
 * business: it reads AWS_ENDPOINT_URL (local mode, LocalStack) like every other setting.
 * Against such an endpoint S3 is addressed path-style, since `bucket.host:port` names
 * rarely resolve on a developer machine.
 */
const customEndpoint = Boolean(process.env.AWS_ENDPOINT_URL || process.env.AWS_ENDPOINT_URL_S3);

let s3: S3Client | undefined;
let sqs: SQSClient | undefined;
let sns: SNSClient | undefined;
let doc: DynamoDBDocumentClient | undefined;

export const clients = {
  s3: (): S3Client => (s3 ??= new S3Client({ forcePathStyle: customEndpoint })),
  sqs: (): SQSClient => (sqs ??= new SQSClient({})),
  sns: (): SNSClient => (sns ??= new SNSClient({})),
  doc: (): DynamoDBDocumentClient =>
    (doc ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    })),
};
