import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { INDEXES, JOB_TYPE_NAME_PATTERN, pascalCase, queueOutputKeys } from '../lambda/shared/contract';
import { resultsPrefixOf } from '../lambda/shared/job-type';
import { builtInJobTypes } from '../job-types';
import { Api } from './api';
import { configFromContext, resolveJobTypeSettings, type OffloadConfig } from './config';
import { apiEntry, consoleModule } from './entries';
import { JobQueue } from './job-queue';
import { acknowledge, allow, workerEntry, type JobTypePlugin } from './job-type';
import { JobsTable } from './jobs-table';
import { acknowledgeFindings } from './nag';
import { Monitoring } from './monitoring';
import { Notifications } from './notifications';
import { Notifier } from './notifier';
import { openApiDocument } from './openapi';
import { Storage } from './storage';
import { Sweeper } from './sweeper';

export interface OffloadStackProps extends StackProps {
  /** Overrides on top of the defaults and the CDK context. */
  config?: Partial<OffloadConfig>;
  /** The job types this stack runs (default: the built-in ones). Compose: `[...builtInJobTypes, mine]`. */
  jobTypes?: readonly JobTypePlugin[];
  /** Per-type setting overrides on top of the context: `{ thumbnail: { timeoutSeconds: 60 } }`. */
  jobSettings?: Record<string, Record<string, unknown>>;
}

/** The platform's output keys; each type adds `<Type>QueueUrl`, `<Type>HighQueueUrl` and `<Type>DlqUrl` (see queueOutputKeys). */
export const OUTPUT_KEYS = ['ApiUrl', 'ApiKeyId', 'RawBucketName', 'ResultsBucketName', 'JobsTableName', 'NotificationTopicArn', 'JobTypes'] as const;

/**
 * offload: API Gateway -> SQS (one queue per job type) -> Lambda workers -> DynamoDB job
 * status -> the table's stream -> SNS. The platform (API, table, sweeper, notifier,
 * monitoring) iterates the job types it is given and never names one.
 */
export class OffloadStack extends Stack {
  readonly config: OffloadConfig;
  readonly jobQueues = new Map<string, JobQueue>();

  constructor(scope: Construct, id: string, props: OffloadStackProps = {}) {
    super(scope, id, props);
    const config = (this.config = configFromContext(this.node, props.config));
    const plugins = props.jobTypes ?? builtInJobTypes;
    checkTypes(plugins);
    checkJobContext(this.node.getAllContext(), plugins.map((p) => p.definition.name));
    const definitions = plugins.map((p) => p.definition);
    const removalPolicy = config.ephemeral ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const corsOrigins = config.corsOrigins.split(',').map((o) => o.trim()).filter(Boolean);

    const storage = new Storage(this, 'Storage', {
      removalPolicy,
      rawExpirationDays: config.rawExpirationDays,
      resultsExpirationDays: config.resultsExpirationDays,
      corsOrigins,
    });
    const jobs = new JobsTable(this, 'Jobs', { removalPolicy });
    const table = jobs.table;
    const notifications = new Notifications(this, 'Notifications', {
      notifyEmail: config.notifyEmail,
      alarmEmail: config.alarmEmail,
      removalPolicy,
    });

    const base = { JOBS_TABLE: table.tableName, JOB_TTL_DAYS: String(config.jobTtlDays), POWERTOOLS_METRICS_NAMESPACE: 'offload', POWERTOOLS_LOG_LEVEL: 'INFO' };
    const settings = new Map(plugins.map((p) => [p.definition.name, resolveJobTypeSettings(this.node, p, config, props.jobSettings?.[p.definition.name])]));

    for (const plugin of plugins) {
      const def = plugin.definition;
      const s = settings.get(def.name)!;
      const jobQueue = new JobQueue(this, pascalCase(def.name), {
        type: def.name,
        entry: workerEntry(plugin),
        description: `offload ${def.name} worker: ${def.description}`.slice(0, 256),
        settings: s,
        dlqRetentionDays: config.dlqRetentionDays,
        logRetentionDays: config.logRetentionDays,
        removalPolicy,
        environment: {
          ...base,
          POWERTOOLS_SERVICE_NAME: `offload-${def.name}`,
          JOB_TYPE: def.name,
          JOB_SETTINGS: JSON.stringify(s),
          RESULTS_BUCKET: storage.resultsBucket.bucketName,
        },
        nativeModules: plugin.nativeModules,
      });
      this.jobQueues.set(def.name, jobQueue);
      // What every worker calls: claim/progress/finish/release, its outputs, its retry backoff.
      const fn = jobQueue.worker.fn;
      allow(fn, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [table.tableArn]);
      allow(fn, ['s3:PutObject'], [storage.resultsBucket.arnForObjects(`${resultsPrefixOf(def)}*`)]);
      allow(fn, ['sqs:ChangeMessageVisibility'], [jobQueue.queue.queueArn, jobQueue.highQueue.queueArn]);
    }

    const openapi = openApiDocument(definitions);
    const api = new Api(this, 'Api', {
      entryFile: apiEntry(plugins, openapi, consoleModule()),
      jobTypes: definitions,
      environment: {
        ...base,
        POWERTOOLS_SERVICE_NAME: 'offload-api',
        RAW_BUCKET: storage.rawBucket.bucketName,
        RESULTS_BUCKET: storage.resultsBucket.bucketName,
        PRESIGN_TTL_SECONDS: String(config.presignTtlSeconds),
        CORS_ORIGINS: corsOrigins.join(','),
        JOB_TYPES: this.toJsonString(
          Object.fromEntries(
            plugins.map((p) => {
              const q = this.jobQueues.get(p.definition.name)!;
              return [p.definition.name, { queueUrl: q.queue.queueUrl, highQueueUrl: q.highQueue.queueUrl, dlqUrl: q.dlq.queueUrl, settings: settings.get(p.definition.name) }];
            }),
          ),
        ),
      },
      timeoutSeconds: config.apiTimeoutSeconds,
      memoryMb: config.apiMemoryMb,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
      corsOrigins,
      rateLimit: config.apiRateLimit,
      burstLimit: config.apiBurstLimit,
      quotaPerDay: config.apiQuotaPerDay,
    });
    const apiFn = api.handler.fn;
    allow(apiFn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], [table.tableArn]);
    allow(apiFn, ['dynamodb:Query'], [`${table.tableArn}/index/${INDEXES.byType}`]);
    allow(apiFn, ['s3:GetObject'], definitions.map((d) => storage.resultsBucket.arnForObjects(`${resultsPrefixOf(d)}*`)));
    const jsonQueues = plugins
      .filter((p) => p.definition.inputKind === 'json')
      .flatMap((p) => [this.jobQueues.get(p.definition.name)!.queue.queueArn, this.jobQueues.get(p.definition.name)!.highQueue.queueArn]);
    if (jsonQueues.length) allow(apiFn, ['sqs:SendMessage'], jsonQueues);
    // GET /queues (the console's queue figures): counts of every work queue and DLQ, and
    // CloudWatch's oldest-message age (GetMetricData has no resource-level permissions).
    allow(apiFn, ['sqs:GetQueueAttributes'], [...this.jobQueues.values()].flatMap((q) => [q.queue.queueArn, q.highQueue.queueArn, q.dlq.queueArn]));
    allow(apiFn, ['cloudwatch:GetMetricData'], ['*']);

    const sweeper = new Sweeper(this, 'Sweeper', {
      intervalMinutes: config.sweepIntervalMinutes,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
      environment: { ...base, POWERTOOLS_SERVICE_NAME: 'offload-sweeper' },
    });
    allow(sweeper.worker.fn, ['dynamodb:UpdateItem'], [table.tableArn]);
    allow(sweeper.worker.fn, ['dynamodb:Query'], [`${table.tableArn}/index/${INDEXES.byDeadline}`]);

    const notifier = new Notifier(this, 'Notifier', {
      table,
      environment: { POWERTOOLS_SERVICE_NAME: 'offload-notifier', TOPIC_ARN: notifications.completionTopic.topicArn },
      logRetentionDays: config.logRetentionDays,
      dlqRetentionDays: config.dlqRetentionDays,
      removalPolicy,
    });
    notifications.grantPublish(notifier.worker.fn);

    for (const plugin of plugins) {
      plugin.infra?.({
        stack: this,
        jobQueue: this.jobQueues.get(plugin.definition.name)!,
        settings: settings.get(plugin.definition.name)!,
        storage,
        table: jobs,
        api,
        allow,
        acknowledge,
      });
    }

    new Monitoring(this, 'Monitoring', {
      alarmTopic: notifications.alarmTopic,
      queues: plugins.map((p) => ({ label: pascalCase(p.definition.name), jobQueue: this.jobQueues.get(p.definition.name)! })),
      apiFunction: api.handler,
      sweeperFunction: sweeper.worker,
      notifier,
      apiName: api.restApi.restApiName,
      apiStage: api.restApi.deploymentStage.stageName,
      oldestMessageSeconds: config.alarmOldestMessageSeconds,
    });

    const outputs: Record<string, [string, string]> = {
      ApiUrl: [api.restApi.url, 'Base URL of the REST API'],
      ApiKeyId: [api.apiKey.keyId, 'Id of the default API key (aws apigateway get-api-key --include-value --api-key ID)'],
      RawBucketName: [storage.rawBucket.bucketName, 'Raw uploads bucket'],
      ResultsBucketName: [storage.resultsBucket.bucketName, 'Results bucket (every type under its own prefix)'],
      JobsTableName: [table.tableName, 'Jobs table'],
      NotificationTopicArn: [notifications.completionTopic.topicArn, 'Job completion topic (attributes: type, status, notificationId)'],
      JobTypes: [definitions.map((d) => d.name).join(','), 'The job types this stack runs'],
    };
    for (const plugin of plugins) {
      const name = plugin.definition.name;
      const keys = queueOutputKeys(name);
      outputs[keys.queue] = [this.jobQueues.get(name)!.queue.queueUrl, `${name} jobs queue (normal priority)`];
      outputs[keys.high] = [this.jobQueues.get(name)!.highQueue.queueUrl, `${name} jobs queue (high priority)`];
      outputs[keys.dlq] = [this.jobQueues.get(name)!.dlq.queueUrl, `${name} dead-letter queue (both lanes)`];
    }
    for (const [key, [value, description]] of Object.entries(outputs)) new CfnOutput(this, key, { value, description });

    acknowledgeFindings(this, { api, storage, notifier, resultsPrefixes: definitions.map((d) => resultsPrefixOf(d)), workers: plugins.map((p) => ({ jobQueue: this.jobQueues.get(p.definition.name)!, prefix: resultsPrefixOf(p.definition) })) });
  }
}

function checkTypes(plugins: readonly JobTypePlugin[]): void {
  const seen = new Set<string>();
  for (const p of plugins) {
    const name = p.definition.name;
    if (!JOB_TYPE_NAME_PATTERN.test(name)) throw new Error(`job type ${JSON.stringify(name)}: names are lower case letters, digits and dashes (${JOB_TYPE_NAME_PATTERN})`);
    if (seen.has(name)) throw new Error(`job type ${name} is registered twice`);
    seen.add(name);
  }
  if (seen.size === 0) throw new Error('an offload stack needs at least one job type');
}

/** `-c jobs.<type>.<setting>` (or a `jobs` object) naming a type the stack does not run is a typo: refuse it. */
function checkJobContext(context: Record<string, unknown>, names: string[]): void {
  const nested = context.jobs;
  const mentioned = [
    ...Object.keys(context).filter((k) => k.startsWith('jobs.')).map((k) => k.split('.')[1]),
    ...(typeof nested === 'object' && nested !== null ? Object.keys(nested) : []),
  ];
  for (const type of mentioned) {
    if (!names.includes(type)) throw new Error(`context jobs.${type}: no job type ${type}; the stack runs ${names.join(', ')}`);
  }
}
