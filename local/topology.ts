import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import {
  APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanCommand,
  CreateUsagePlanKeyCommand,
  GetResourcesCommand,
  GetRestApisCommand,
} from '@aws-sdk/client-api-gateway';
import { CloudFormationClient, DescribeStackResourcesCommand } from '@aws-sdk/client-cloudformation';
import {
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
  ListFunctionsCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { PutBucketNotificationConfigurationCommand, S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { FunctionSpec } from './function-pool';
import type { EventSourceConfig } from './event-source';
import type { StreamSourceConfig } from './stream-source';

/**
 * What local mode runs, read from the deployed stack (and, where the emulator ignores a
 * property, from the synthesized template that was deployed): there is no second,
 * hand-written description of the topology.
 */
export interface Topology {
  functions: Map<string, FunctionSpec>; // by function ARN
  eventSources: Array<EventSourceConfig & { functionArn: string }>;
  /** DynamoDB stream event sources (run by local/stream-source.ts). */
  streamSources: StreamSourceConfig[];
  api: ApiTopology;
  schedules: Array<{ label: string; functionArn: string; everyMs: number; ruleArn: string }>;
}

export interface ApiRoute {
  path: string; // e.g. /jobs/{jobId}
  method: string;
  apiKeyRequired: boolean;
  functionArn: string;
}

export interface GatewayResponse {
  statusCode?: string;
  headers: Record<string, string>;
  template?: string;
}

export interface ApiTopology {
  restApiId: string;
  stage: string;
  binaryMediaTypes: string[];
  routes: ApiRoute[];
  gatewayResponses: Record<string, GatewayResponse>;
  apiKeyId: string;
  apiKey: string;
}

export interface DiscoverOptions {
  endpoint: string;
  region: string;
  stackName: string;
  template: Record<string, any>;
  cloudAssembly: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  log: (line: string) => void;
}

type Resource = { Type: string; Properties?: any; Metadata?: any };

/**
 * moto sets up each service's request handling at that service's first request (~0.3-0.6 s
 * each for Lambda, API Gateway and SQS). Read-only requests to them while `cdk deploy` runs
 * (its CLI leaves the emulator idle for much of that time) take that set-up off discover()'s
 * path. Errors are ignored: discover() makes the real requests.
 */
export async function warmUp(opts: Pick<DiscoverOptions, 'endpoint' | 'region' | 'credentials'>): Promise<void> {
  const cfg = { endpoint: opts.endpoint, region: opts.region, credentials: opts.credentials };
  await Promise.allSettled([
    new LambdaClient(cfg).send(new ListFunctionsCommand({ MaxItems: 1 })),
    new APIGatewayClient(cfg).send(new GetRestApisCommand({ limit: 1 })),
    new SQSClient(cfg).send(new ListQueuesCommand({ MaxResults: 1 })),
  ]);
}

export async function discover(opts: DiscoverOptions): Promise<Topology> {
  const cfg = { endpoint: opts.endpoint, region: opts.region, credentials: opts.credentials };
  const cfn = new CloudFormationClient(cfg);
  const lambda = new LambdaClient(cfg);
  const sqs = new SQSClient(cfg);
  const resources = opts.template.Resources as Record<string, Resource>;

  const physical = new Map<string, string>();
  const described = await cfn.send(new DescribeStackResourcesCommand({ StackName: opts.stackName }));
  for (const r of described.StackResources ?? []) {
    if (r.LogicalResourceId && r.PhysicalResourceId) physical.set(r.LogicalResourceId, r.PhysicalResourceId);
  }
  const need = (logicalId: string): string => {
    const id = physical.get(logicalId);
    if (!id) throw new Error(`the emulator did not create ${logicalId} (${resources[logicalId]?.Type})`);
    return id;
  };
  const queueArnCache = new Map<string, string>();
  const queueArn = async (logicalId: string): Promise<string> => {
    if (!queueArnCache.has(logicalId)) {
      const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: need(logicalId), AttributeNames: ['QueueArn'] }));
      queueArnCache.set(logicalId, out.Attributes!.QueueArn!);
    }
    return queueArnCache.get(logicalId)!;
  };

  // Functions: bundle and handler from the template, configuration from the emulator.
  const functions = new Map<string, FunctionSpec>();
  const fnByLogical = new Map<string, string>();
  // Independent reads go out together (the emulator answers them in parallel): local mode's
  // start waits for this discovery.
  const fnDefs = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
  const confs = await Promise.all(fnDefs.map(([logicalId]) => lambda.send(new GetFunctionConfigurationCommand({ FunctionName: need(logicalId) }))));
  for (const [i, [logicalId, r]] of fnDefs.entries()) {
    const conf = confs[i];
    const assetPath = r.Metadata?.['aws:asset:path'];
    if (!assetPath) throw new Error(`${logicalId} has no aws:asset:path metadata`);
    const environment = conf.Environment?.Variables ?? {};
    const spec: FunctionSpec = {
      label: (environment.POWERTOOLS_SERVICE_NAME ?? logicalId.replace(/[0-9A-F]{8}$/, '')).replace(/^offload-/, ''),
      functionName: conf.FunctionName!,
      functionArn: conf.FunctionArn!,
      bundleDir: path.join(opts.cloudAssembly, assetPath),
      handler: conf.Handler ?? r.Properties.Handler,
      timeoutSeconds: conf.Timeout ?? r.Properties.Timeout ?? 3,
      memoryMb: conf.MemorySize ?? r.Properties.MemorySize ?? 128,
      environment,
    };
    functions.set(spec.functionArn, spec);
    fnByLogical.set(logicalId, spec.functionArn);
  }

  // SQS event sources: read, then disabled in the emulator (moto would otherwise receive
  // the messages itself and try to invoke a Lambda it cannot run, bumping receive counts).
  const eventSources: Topology['eventSources'] = [];
  const mappingsRead = lambda.send(new ListEventSourceMappingsCommand({}));
  const readEventSources = async () => {
    const mappings = await mappingsRead;
    for (const m of mappings.EventSourceMappings ?? []) {
      const fn = functions.get(m.FunctionArn!);
      if (!fn || !m.EventSourceArn?.startsWith('arn:aws:sqs:')) continue;
      const logical = [...physical.entries()].find(([, p]) => p === m.UUID)?.[0];
      const props = logical ? resources[logical]?.Properties ?? {} : {};
      const queueLogical = Object.keys(resources).find((id) => resources[id].Type === 'AWS::SQS::Queue' && queueArnCache.get(id) === m.EventSourceArn);
      let queueUrl = queueLogical ? physical.get(queueLogical) : undefined;
      if (!queueUrl) {
        for (const id of Object.keys(resources).filter((k) => resources[k].Type === 'AWS::SQS::Queue')) {
          if ((await queueArn(id)) === m.EventSourceArn) queueUrl = need(id);
        }
      }
      if (!queueUrl) throw new Error(`no queue in the stack for ${m.EventSourceArn}`);
      eventSources.push({
        label: fn.label,
        functionArn: fn.functionArn,
        queueUrl,
        queueArn: m.EventSourceArn,
        region: opts.region,
        batchSize: m.BatchSize ?? props.BatchSize ?? 10,
        batchingWindowSeconds: m.MaximumBatchingWindowInSeconds ?? props.MaximumBatchingWindowInSeconds ?? 0,
        maxConcurrency: m.ScalingConfig?.MaximumConcurrency ?? props.ScalingConfig?.MaximumConcurrency ?? 5,
        reportBatchItemFailures: (m.FunctionResponseTypes ?? props.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
      });
      await lambda.send(new UpdateEventSourceMappingCommand({ UUID: m.UUID!, Enabled: false }));
    }
  };

  // DynamoDB stream event sources: read, then disabled in the emulator. moto would
  // otherwise hand every write to the function itself (in Docker) and empty the shard,
  // so the stream would read as empty (see MOTO_STREAM_MAPPING_FIX in emulator.ts).
  const streamSources: Topology['streamSources'] = [];
  const readStreamSources = async () => {
    const mappings = await mappingsRead;
    for (const m of mappings.EventSourceMappings ?? []) {
      const fn = functions.get(m.FunctionArn!);
      if (!fn || !isDynamoStreamArn(m.EventSourceArn)) continue;
      const logical = [...physical.entries()].find(([, p]) => p === m.UUID)?.[0];
      const props = logical ? resources[logical]?.Properties ?? {} : {};
      const patterns = (m.FilterCriteria?.Filters ?? props.FilterCriteria?.Filters ?? []).map((f: { Pattern?: unknown }) =>
        typeof f.Pattern === 'string' ? f.Pattern : JSON.stringify(f.Pattern ?? {}),
      );
      let destinationArn: string | undefined = m.DestinationConfig?.OnFailure?.Destination;
      const templateDestination = props.DestinationConfig?.OnFailure?.Destination;
      if (!destinationArn && templateDestination) {
        destinationArn = typeof templateDestination === 'string' ? templateDestination : await queueArn(templateDestination['Fn::GetAtt']?.[0]);
      }
      let onFailure: StreamSourceConfig['onFailure'];
      if (destinationArn?.startsWith('arn:aws:sqs:')) {
        const [, , , , account, name] = destinationArn.split(':');
        const url = await sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
        onFailure = { destinationArn, queueUrl: url.QueueUrl! };
      } else if (destinationArn) {
        opts.log(`[local] ${fn.label}: OnFailure destination ${destinationArn} is not an SQS queue; discarded records are only logged locally`);
      }
      streamSources.push({
        label: fn.label,
        functionArn: fn.functionArn,
        streamArn: m.EventSourceArn!,
        region: opts.region,
        startingPosition: (m.StartingPosition ?? props.StartingPosition) === 'TRIM_HORIZON' ? 'TRIM_HORIZON' : 'LATEST',
        batchSize: m.BatchSize ?? props.BatchSize ?? 100,
        batchingWindowSeconds: m.MaximumBatchingWindowInSeconds ?? props.MaximumBatchingWindowInSeconds ?? 0,
        bisectBatchOnFunctionError: Boolean(m.BisectBatchOnFunctionError ?? props.BisectBatchOnFunctionError ?? false),
        maximumRetryAttempts: m.MaximumRetryAttempts ?? props.MaximumRetryAttempts ?? -1,
        maximumRecordAgeSeconds: m.MaximumRecordAgeInSeconds ?? props.MaximumRecordAgeInSeconds ?? -1,
        reportBatchItemFailures: (m.FunctionResponseTypes ?? props.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
        filterPatterns: patterns,
        onFailure,
      });
      await lambda.send(new UpdateEventSourceMappingCommand({ UUID: m.UUID!, Enabled: false }));
    }
  };

  // S3 -> SQS notifications: moto ignores the bucket's NotificationConfiguration.
  const applyNotifications = async () => {
    const s3 = new S3Client({ ...cfg, forcePathStyle: true });
    for (const [logicalId, r] of Object.entries(resources)) {
      const qcs = r.Type === 'AWS::S3::Bucket' ? r.Properties?.NotificationConfiguration?.QueueConfigurations : undefined;
      if (!qcs) continue;
      const QueueConfigurations = [];
      for (const qc of qcs) {
        QueueConfigurations.push({
          QueueArn: await queueArn(qc.Queue['Fn::GetAtt'][0]),
          Events: [qc.Event],
          Filter: qc.Filter ? { Key: { FilterRules: qc.Filter.S3Key.Rules.map((x: any) => ({ Name: x.Name, Value: x.Value })) } } : undefined,
        });
      }
      await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: need(logicalId), NotificationConfiguration: { QueueConfigurations } }));
    }
  };

  // The notification comes after the mappings are disabled: S3 sends a test event to the
  // queue when it is configured, which an enabled mapping in moto would consume.
  const [api] = await Promise.all([discoverApi(opts, resources, need, cfg), readEventSources().then(applyNotifications), readStreamSources()]);

  // Scheduled rules (the sweeper): run by local mode's own timer.
  const schedules: Topology['schedules'] = [];
  for (const [logicalId, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::Events::Rule' || !r.Properties?.ScheduleExpression || r.Properties.State === 'DISABLED') continue;
    const everyMs = parseRate(r.Properties.ScheduleExpression);
    for (const t of r.Properties.Targets ?? []) {
      const arn = fnByLogical.get(t.Arn?.['Fn::GetAtt']?.[0]);
      if (arn && everyMs) schedules.push({ label: functions.get(arn)!.label, functionArn: arn, everyMs, ruleArn: physical.get(logicalId) ?? logicalId });
    }
  }
  return { functions, eventSources, streamSources, api, schedules };
}

async function discoverApi(
  opts: DiscoverOptions,
  resources: Record<string, Resource>,
  need: (id: string) => string,
  cfg: { endpoint: string; region: string; credentials: DiscoverOptions['credentials'] },
): Promise<ApiTopology> {
  const apigw = new APIGatewayClient(cfg);
  const restLogical = Object.keys(resources).find((id) => resources[id].Type === 'AWS::ApiGateway::RestApi');
  if (!restLogical) throw new Error('the stack has no REST API');
  const restApiId = need(restLogical);
  const stage = Object.values(resources).find((r) => r.Type === 'AWS::ApiGateway::Stage')?.Properties?.StageName ?? 'prod';

  const routes: ApiRoute[] = [];
  const got = await apigw.send(new GetResourcesCommand({ restApiId, embed: ['methods'], limit: 500 }));
  for (const item of got.items ?? []) {
    for (const [method, m] of Object.entries(item.resourceMethods ?? {})) {
      const uri = m.methodIntegration?.uri ?? '';
      const fnArn = /functions\/(arn:[^/]+)\/invocations/.exec(uri)?.[1];
      if (!fnArn) continue;
      routes.push({ path: item.path!, method, apiKeyRequired: Boolean(m.apiKeyRequired), functionArn: fnArn });
    }
  }

  const gatewayResponses: Record<string, GatewayResponse> = {};
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::ApiGateway::GatewayResponse') continue;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries<string>(r.Properties.ResponseParameters ?? {})) {
      headers[k.replace(/^gatewayresponse\.header\./, '')] = String(v).replace(/^'|'$/g, '');
    }
    gatewayResponses[r.Properties.ResponseType] = {
      statusCode: r.Properties.StatusCode,
      headers,
      template: r.Properties.ResponseTemplates?.['application/json'],
    };
  }

  // moto's CloudFormation skips API keys and usage plans: create them as the template says.
  const keyDef = Object.entries(resources).find(([, r]) => r.Type === 'AWS::ApiGateway::ApiKey');
  const planDef = Object.entries(resources).find(([, r]) => r.Type === 'AWS::ApiGateway::UsagePlan');
  const value = process.env.OFFLOAD_LOCAL_API_KEY ?? randomBytes(20).toString('hex');
  const key = await apigw.send(
    new CreateApiKeyCommand({
      name: keyDef ? `${opts.stackName}-${keyDef[0]}` : `${opts.stackName}-local`,
      description: keyDef?.[1].Properties?.Description,
      enabled: true,
      value,
    }),
  );
  if (planDef) {
    const p = planDef[1].Properties ?? {};
    const plan = await apigw.send(
      new CreateUsagePlanCommand({
        name: `${opts.stackName}-${planDef[0]}`,
        description: p.Description,
        throttle: p.Throttle ? { rateLimit: p.Throttle.RateLimit, burstLimit: p.Throttle.BurstLimit } : undefined,
        quota: p.Quota ? { limit: p.Quota.Limit, period: p.Quota.Period } : undefined,
        apiStages: [{ apiId: restApiId, stage }],
      }),
    );
    await apigw.send(new CreateUsagePlanKeyCommand({ usagePlanId: plan.id!, keyId: key.id!, keyType: 'API_KEY' }));
  }
  const binaryMediaTypes = (resources[restLogical].Properties?.BinaryMediaTypes ?? []) as string[];
  return { restApiId, stage, binaryMediaTypes, routes, gatewayResponses, apiKeyId: key.id!, apiKey: value };
}

/** A DynamoDB stream's ARN: `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL`. */
export function isDynamoStreamArn(arn: string | undefined): boolean {
  return /^arn:aws[\w-]*:dynamodb:[^:]*:[^:]*:table\/[^/]+\/stream\/.+$/.test(arn ?? '');
}

/** `rate(5 minutes)` -> ms. Cron expressions are not run locally. */
export function parseRate(expr: string): number | undefined {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expr.trim());
  if (!m) return undefined;
  const unit = m[2].startsWith('minute') ? 60_000 : m[2].startsWith('hour') ? 3_600_000 : 86_400_000;
  return Number(m[1]) * unit;
}
