import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_KEYS } from '../../lib/offload-stack';
import { assemblyBootstrapNeeds, bootstrapQualifier, defaultBootstrapNeeds, missingBootstrap } from '../../local/deploy';
import { ensureCfnLint } from '../../local/python-tools';
import { resourcesOfType, synth, type Synthesized } from './synth';

let full: Synthesized;
let plain: Synthesized;

beforeAll(() => {
  // One real synth (bundling, cdk-nag), one without bundling for property checks.
  full = synth({}, { nag: true });
  plain = synth({}, { bundle: false });
});

const workerFunctions = (s: Synthesized) =>
  resourcesOfType(s.json, 'AWS::Lambda::Function').filter(([, r]) => /worker/i.test(r.Properties.Description));

describe('the template as a whole', () => {
  it('has no CDK custom resource (emulators and LocalStack community cannot run them)', () => {
    const types = Object.values(full.json.Resources as Record<string, any>).map((r) => r.Type as string);
    expect(types.filter((t) => t.startsWith('Custom::') || t === 'AWS::CloudFormation::CustomResource')).toEqual([]);
    expect(types).not.toContain('AWS::Lambda::LayerVersion');
  });

  it('grants no wildcard action (`*` or `service:*`) in any IAM statement', () => {
    const statements: any[] = [];
    for (const [, r] of Object.entries(full.json.Resources as Record<string, any>)) {
      const docs = [r.Properties?.PolicyDocument, r.Properties?.KeyPolicy, ...(r.Properties?.Policies ?? []).map((p: any) => p.PolicyDocument)];
      for (const doc of docs) if (doc) statements.push(...doc.Statement);
    }
    expect(statements.length).toBeGreaterThan(10);
    const actions = statements
      .filter((s) => s.Effect === 'Allow')
      .flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]))
      .filter((a) => typeof a === 'string');
    expect(actions.filter((a) => a === '*' || /^[a-z0-9-]+:\*$/i.test(a))).toEqual([]);
  });

  it('passes cdk-nag AwsSolutions with zero unacknowledged findings, each acknowledgement with a reason', () => {
    const report = JSON.parse(fs.readFileSync(path.join(full.outdir, 'validation-report.json'), 'utf8'));
    const aws = report.pluginReports.find((p: any) => p.pluginName === 'AwsSolutions');
    expect(aws.conclusion).toBe('success');
    expect(aws.violations).toEqual([]);
    const acks = full.stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules').flatMap((m) => m.data as any));
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks as any[]) {
      const entries = Array.isArray(ack) ? ack : [ack];
      for (const e of entries) {
        for (const [id, reason] of Object.entries(e)) {
          if (id.startsWith('AwsSolutions::')) expect(String(reason).length, id).toBeGreaterThan(30);
        }
      }
    }
  });

  it('is clean under cfn-lint (no errors; W3005 is CDK adding DependsOn next to a GetAtt)', async () => {
    // On the PATH, or a module of OFFLOAD_PYTHON, or in .offload/venv (installed there when
    // missing); otherwise this fails with one line saying what to install.
    const cfnLint = await ensureCfnLint();
    const out = spawnSync(cfnLint.command, [...cfnLint.args, '--format', 'json', '--ignore-checks', 'W3005', '--', full.templatePath], { encoding: 'utf8' });
    expect(out.error).toBeUndefined();
    const findings = JSON.parse(out.stdout || '[]') as Array<{ Rule: { Id: string }; Message: string }>;
    expect(findings.map((f) => `${f.Rule.Id}: ${f.Message}`)).toEqual([]);
  });

  it('asks only for the bootstrap resources local mode makes before the synth ends', () => {
    const needs = assemblyBootstrapNeeds(full.outdir, 'Offload', '123456789012', 'us-east-1');
    expect(needs.buckets).toHaveLength(1);
    expect(missingBootstrap(defaultBootstrapNeeds(bootstrapQualifier({}), '123456789012', 'us-east-1'), needs)).toBeUndefined();
  });

  it('has exactly the documented outputs', () => {
    expect(Object.keys(full.json.Outputs).sort()).toEqual([...OUTPUT_KEYS].sort());
  });

  it('bundles sharp for linux-arm64 with the thumbnail worker, whatever the build machine', () => {
    const [, fn] = workerFunctions(full).find(([, r]) => /thumbnail/i.test(r.Properties.Description))!;
    const assetDir = path.join(full.outdir, fn.Metadata['aws:asset:path']);
    expect(fs.existsSync(path.join(assetDir, 'index.js'))).toBe(true);
    expect(fs.existsSync(path.join(assetDir, 'node_modules', 'sharp', 'package.json'))).toBe(true);
    const img = fs.readdirSync(path.join(assetDir, 'node_modules', '@img'));
    expect(img).toContain('sharp-linux-arm64');
    expect(img.filter((d) => /x64|darwin|win32/.test(d))).toEqual([]);
  });

  it('matches the snapshot (asset hashes masked)', () => {
    const masked = JSON.parse(
      JSON.stringify(full.json)
        .replace(/[0-9a-f]{64}(\.zip|\.json)?/g, '[ASSET-HASH]$1')
        .replace(/"aws:asset:path":"[^"]*"/g, '"aws:asset:path":"[ASSET-PATH]"'),
    );
    expect(masked).toMatchSnapshot();
  });
});

describe('API', () => {
  it('is a REST API with binary media types for images', () => {
    plain.template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      BinaryMediaTypes: ['image/*'],
      ApiKeySourceType: 'HEADER',
      EndpointConfiguration: { Types: ['REGIONAL'] },
    });
  });

  it('requires an API key on every route but CORS preflight', () => {
    const methods = resourcesOfType(plain.json, 'AWS::ApiGateway::Method');
    const routes = methods.filter(([, m]) => m.Properties.HttpMethod !== 'OPTIONS');
    expect(routes.length).toBe(4);
    for (const [, m] of routes) expect(m.Properties.ApiKeyRequired).toBe(true);
    const preflight = methods.filter(([, m]) => m.Properties.HttpMethod === 'OPTIONS');
    expect(preflight.length).toBe(4);
    for (const [, m] of preflight) {
      // Answered by the API function (no MOCK integration: emulators cannot deploy those).
      expect(m.Properties.ApiKeyRequired).toBe(false);
      expect(m.Properties.Integration.Type).toBe('AWS_PROXY');
    }
  });

  it('has a usage plan with throttling and a quota, holding the API key', () => {
    plain.template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 50, BurstLimit: 100 },
      Quota: { Limit: 100000, Period: 'DAY' },
    });
    plain.template.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
    plain.template.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
  });

  it('writes JSON access logs and validates JSON bodies', () => {
    plain.template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: [Match.objectLike({ LoggingLevel: 'ERROR', MetricsEnabled: true })],
    });
    plain.template.hasResourceProperties('AWS::ApiGateway::RequestValidator', { ValidateRequestBody: true });
    const posts = resourcesOfType(plain.json, 'AWS::ApiGateway::Method').filter(([, m]) => m.Properties.HttpMethod === 'POST');
    expect(posts.length).toBe(2);
    for (const [, m] of posts) {
      expect(m.Properties.RequestValidatorId).toBeDefined();
      expect(Object.keys(m.Properties.RequestModels)).toEqual(['application/json']);
    }
  });

  it('answers gateway errors in the API JSON error format', () => {
    const responses = resourcesOfType(plain.json, 'AWS::ApiGateway::GatewayResponse');
    const byType = Object.fromEntries(responses.map(([, r]) => [r.Properties.ResponseType, r.Properties]));
    expect(byType.MISSING_AUTHENTICATION_TOKEN.StatusCode).toBe('404');
    expect(byType.INVALID_API_KEY.StatusCode).toBe('403');
    expect(byType.REQUEST_TOO_LARGE.StatusCode).toBe('413');
    for (const r of Object.values(byType) as any[]) {
      expect(r.ResponseTemplates['application/json']).toMatch(/^\{"error":\{"code":"[a-z_]+","message":/);
    }
  });
});

describe('storage', () => {
  const buckets = (s: Synthesized) => resourcesOfType(s.json, 'AWS::S3::Bucket');

  it('blocks public access, encrypts, and logs access for every bucket', () => {
    expect(buckets(plain).length).toBe(3);
    for (const [, b] of buckets(plain)) {
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    }
    const logged = buckets(plain).filter(([, b]) => b.Properties.LoggingConfiguration);
    expect(logged.length).toBe(2);
  });

  it('enforces TLS on every bucket', () => {
    const policies = resourcesOfType(plain.json, 'AWS::S3::BucketPolicy');
    expect(policies.length).toBe(3);
    for (const [, p] of policies) {
      expect(p.Properties.PolicyDocument.Statement).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      );
    }
  });

  it('expires raw uploads after the configured number of days', () => {
    const rules = (s: Synthesized) =>
      buckets(s).flatMap(([, b]) => b.Properties.LifecycleConfiguration?.Rules ?? []).filter((r: any) => r.Prefix === 'uploads/');
    expect(rules(plain)).toEqual([expect.objectContaining({ ExpirationInDays: 30, Status: 'Enabled' })]);
    expect(rules(synth({ rawExpirationDays: '7' }, { bundle: false }))).toEqual([expect.objectContaining({ ExpirationInDays: 7 })]);
  });

  it('retains data by default and destroys it with ephemeral=true', () => {
    const stateful = ['AWS::S3::Bucket', 'AWS::DynamoDB::Table', 'AWS::SQS::Queue', 'AWS::Logs::LogGroup'];
    for (const [, r] of Object.entries(plain.json.Resources as Record<string, any>)) {
      if (stateful.includes(r.Type)) expect(r.DeletionPolicy, r.Type).toBe('Retain');
    }
    const eph = synth({ ephemeral: 'true' }, { bundle: false });
    for (const [, r] of Object.entries(eph.json.Resources as Record<string, any>)) {
      if (stateful.includes(r.Type)) expect(r.DeletionPolicy, r.Type).toBe('Delete');
    }
  });

  it('sends ObjectCreated under uploads/ to the thumbnails queue, from the bucket itself', () => {
    const raw = buckets(plain).find(([, b]) => b.Properties.NotificationConfiguration);
    expect(raw).toBeDefined();
    const [rawId, bucket] = raw!;
    const qc = bucket.Properties.NotificationConfiguration.QueueConfigurations;
    expect(qc).toEqual([
      {
        Event: 's3:ObjectCreated:*',
        Queue: { 'Fn::GetAtt': [expect.stringMatching(/^ThumbnailsQueue/), 'Arn'] },
        Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'uploads/' }] } },
      },
    ]);
    // The bucket waits for the queue policy that lets S3 send, and that policy does not reference the bucket.
    const queuePolicy = resourcesOfType(plain.json, 'AWS::SQS::QueuePolicy').find(([, p]) =>
      JSON.stringify(p.Properties.PolicyDocument).includes('s3.amazonaws.com'),
    )!;
    expect(bucket.DependsOn).toContain(queuePolicy[0]);
    expect(JSON.stringify(queuePolicy[1])).not.toContain(rawId);
  });
});

describe('queues and workers', () => {
  const queues = (s: Synthesized) => resourcesOfType(s.json, 'AWS::SQS::Queue');
  const workQueues = (s: Synthesized) => queues(s).filter(([, q]) => q.Properties.RedrivePolicy);

  it('has one queue per job type, each with its own DLQ (14 days) after 3 receives', () => {
    expect(queues(plain).length).toBe(4);
    const work = workQueues(plain);
    expect(work.length).toBe(2);
    const dlqIds = new Set(work.map(([, q]) => q.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]));
    expect(dlqIds.size).toBe(2);
    for (const [, q] of work) expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(3);
    for (const id of dlqIds) expect(plain.json.Resources[id].Properties.MessageRetentionPeriod).toBe(14 * 86400);
    const custom = workQueues(synth({ maxReceiveCount: '5' }, { bundle: false }));
    for (const [, q] of custom) expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(5);
  });

  it('encrypts every queue and refuses non-TLS requests', () => {
    for (const [, q] of queues(plain)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = resourcesOfType(plain.json, 'AWS::SQS::QueuePolicy');
    expect(policies.length).toBe(4);
    for (const [, p] of policies) {
      expect(JSON.stringify(p.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('derives each visibility timeout from its worker timeout (6x), never typed by hand', () => {
    const s = synth({ thumbnailTimeoutSeconds: '20', reportTimeoutSeconds: '300' }, { bundle: false });
    const fns = workerFunctions(s);
    const timeouts = new Map<string, number>();
    for (const [id, fn] of fns) timeouts.set(id, fn.Properties.Timeout);
    const mappings = resourcesOfType(s.json, 'AWS::Lambda::EventSourceMapping');
    expect(mappings.length).toBe(2);
    for (const [, m] of mappings) {
      const fnId = m.Properties.FunctionName.Ref;
      const queueId = m.Properties.EventSourceArn['Fn::GetAtt'][0];
      expect(s.json.Resources[queueId].Properties.VisibilityTimeout).toBe(6 * timeouts.get(fnId)!);
    }
    expect([...timeouts.values()].sort((a, b) => a - b)).toEqual([20, 300]);
  });

  it('reports partial batch failures, with configurable batch size and maximum concurrency (reports: 2)', () => {
    const mappings = resourcesOfType(plain.json, 'AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties);
    for (const m of mappings) expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    const concurrency = mappings.map((m) => m.ScalingConfig.MaximumConcurrency).sort((a, b) => a - b);
    expect(concurrency).toEqual([2, 20]);
    const custom = resourcesOfType(
      synth({ thumbnailBatchSize: '10', thumbnailBatchingWindowSeconds: '2', thumbnailMaxConcurrency: '7' }, { bundle: false }).json,
      'AWS::Lambda::EventSourceMapping',
    ).map(([, m]) => m.Properties);
    expect(custom).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ BatchSize: 10, MaximumBatchingWindowInSeconds: 2, ScalingConfig: { MaximumConcurrency: 7 } }),
      ]),
    );
  });

  it('runs every function on arm64 and the current Node.js runtime, with its own log group and retention', () => {
    const fns = resourcesOfType(plain.json, 'AWS::Lambda::Function');
    expect(fns.length).toBe(4); // api, thumbnail worker, report worker, sweeper
    for (const [, fn] of fns) {
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Runtime).toBe('nodejs24.x');
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
    const groups = resourcesOfType(plain.json, 'AWS::Logs::LogGroup');
    expect(groups.length).toBe(5);
    for (const [, g] of groups) expect(g.Properties.RetentionInDays).toBe(30);
  });

  it('rejects a bad context value at synth time', () => {
    expect(() => synth({ reportMaxConcurrency: '1' }, { bundle: false })).toThrow(/reportMaxConcurrency/);
    expect(() => synth({ thumbnailTimeoutSeconds: 'soon' }, { bundle: false })).toThrow(/expected a number/);
  });
});

describe('jobs table', () => {
  it('is on-demand with point-in-time recovery, TTL and a type/createdAt index', () => {
    plain.template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({
          KeySchema: [
            { AttributeName: 'type', KeyType: 'HASH' },
            { AttributeName: 'createdAt', KeyType: 'RANGE' },
          ],
        }),
      ]),
    });
  });
});

describe('sweeper', () => {
  it('runs on a schedule over a sparse index of held leases, with a grace of maxReceiveCount x visibility', () => {
    plain.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)', State: 'ENABLED' });
    plain.template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({
          IndexName: 'byLease',
          KeySchema: [
            { AttributeName: 'leaseShard', KeyType: 'HASH' },
            { AttributeName: 'leaseUntil', KeyType: 'RANGE' },
          ],
        }),
      ]),
    });
    const [, sweeper] = resourcesOfType(plain.json, 'AWS::Lambda::Function').find(([, f]) => /sweeper/.test(f.Properties.Description))!;
    expect(sweeper.Properties.Environment.Variables).toMatchObject({ THUMBNAIL_GRACE_SECONDS: String(3 * 180), REPORT_GRACE_SECONDS: String(3 * 3600) });
  });
});

describe('notifications and monitoring', () => {
  it('encrypts the topics with a rotated key and refuses non-TLS', () => {
    const topics = resourcesOfType(plain.json, 'AWS::SNS::Topic');
    expect(topics.length).toBe(2);
    for (const [, t] of topics) expect(t.Properties.KmsMasterKeyId).toBeDefined();
    plain.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const policies = resourcesOfType(plain.json, 'AWS::SNS::TopicPolicy');
    expect(policies.length).toBe(2);
    for (const [, p] of policies) expect(JSON.stringify(p.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });

  it('subscribes an e-mail address only when notifyEmail is given', () => {
    plain.template.resourceCountIs('AWS::SNS::Subscription', 0);
    const s = synth({ notifyEmail: 'ops@example.com' }, { bundle: false });
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('alarms on DLQ depth, message age, worker errors and throttles, to the alarm topic', () => {
    const alarms = resourcesOfType(plain.json, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const byMetric = (name: string) => alarms.filter((a) => a.MetricName === name);
    expect(byMetric('ApproximateNumberOfMessagesVisible').length).toBe(2);
    for (const a of byMetric('ApproximateNumberOfMessagesVisible')) {
      expect(a.Threshold).toBe(0);
      expect(a.ComparisonOperator).toBe('GreaterThanThreshold');
    }
    expect(byMetric('ApproximateAgeOfOldestMessage').map((a) => a.Threshold)).toEqual([900, 900]);
    expect(byMetric('Errors').length).toBe(4);
    expect(byMetric('Throttles').length).toBe(2);
    const alarmTopic = resourcesOfType(plain.json, 'AWS::SNS::Topic').find(([, t]) => t.Properties.DisplayName === 'offload alarms')![0];
    for (const a of alarms) expect(a.AlarmActions).toEqual([{ Ref: alarmTopic }]);
  });

  it('has a dashboard with depth, age, throughput, errors and duration per queue', () => {
    const [, dash] = resourcesOfType(plain.json, 'AWS::CloudWatch::Dashboard')[0];
    const body = JSON.stringify(dash.Properties.DashboardBody);
    for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateAgeOfOldestMessage', 'NumberOfMessagesDeleted', 'Errors', 'Duration']) {
      expect(body).toContain(metric);
    }
  });
});
