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

// One function per client (not one object holding them all), so a bundle carries only the
// clients its function calls: esbuild drops the imports nobody uses.

// Checksums only when an operation requires one: otherwise presigned PUT URLs carry the
// CRC32 of an empty body and S3 rejects the real upload.
export const s3Client = (): S3Client => (s3 ??= new S3Client({ forcePathStyle: customEndpoint, requestChecksumCalculation: 'WHEN_REQUIRED' }));

// The SDK would otherwise send each call to the host named in the QueueUrl, which an
// emulator spells as AWS's (sqs.us-east-1.amazonaws.com/...).
export const sqsClient = (): SQSClient => (sqs ??= new SQSClient({ useQueueUrlAsEndpoint: !customEndpoint }));

export const snsClient = (): SNSClient => (sns ??= new SNSClient({}));

export const docClient = (): DynamoDBDocumentClient =>
  (doc ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  }));
