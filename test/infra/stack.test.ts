import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { INDEXES, queueOutputKeys } from '../../lambda/shared/contract';
import { MAX_WAIT_SECONDS } from '../../lambda/shared/schemas';
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

const functionByDescription = (s: Synthesized, pattern: RegExp): [string, any] => {
  const found = resourcesOfType(s.json, 'AWS::Lambda::Function').filter(([, f]) => pattern.test(f.Properties.Description));
  expect(found.length, String(pattern)).toBe(1);
  return found[0];
};

/** Every Allow statement of the inline policies attached to a function's role. */
const statementsOf = (s: Synthesized, fn: any): any[] => {
  const role = fn.Properties.Role['Fn::GetAtt'][0];
  return resourcesOfType(s.json, 'AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === role))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
};

/** A function's granted actions (sorted), without the log-writing ones every function has. */
const actionsOf = (s: Synthesized, fn: any): string[] =>
  [...new Set(statementsOf(s, fn).flatMap((st) => (Array.isArray(st.Action) ? st.Action : [st.Action])))]
    .filter((a) => !a.startsWith('logs:'))
    .sort();

/** The actions granted on a resource whose JSON contains `needle`. */
const actionsOn = (s: Synthesized, fn: any, needle: string): string[] =>
  statementsOf(s, fn)
    .filter((st) => JSON.stringify(st.Resource).includes(needle))
    .flatMap((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]))
    .sort();

/** SQS event source mappings (the notifier's is a DynamoDB stream). */
const sqsMappings = (s: Synthesized) =>
  resourcesOfType(s.json, 'AWS::Lambda::EventSourceMapping').filter(([, m]) => !JSON.stringify(m.Properties.EventSourceArn).includes('StreamArn'));

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
    const perType = ['thumbnail', 'report'].flatMap((t) => Object.values(queueOutputKeys(t)));
    expect(perType).toEqual(['ThumbnailQueueUrl', 'ThumbnailHighQueueUrl', 'ThumbnailDlqUrl', 'ReportQueueUrl', 'ReportHighQueueUrl', 'ReportDlqUrl']);
    expect(OUTPUT_KEYS).toContain('JobTypes');
    expect(Object.keys(full.json.Outputs).sort()).toEqual([...OUTPUT_KEYS, ...perType].sort());
    expect(full.json.Outputs.JobTypes.Value).toBe('thumbnail,report');
    expect(full.json.Outputs.ThumbnailQueueUrl.Value).toEqual({ Ref: expect.stringMatching(/^ThumbnailQueue/) });
    expect(full.json.Outputs.ThumbnailHighQueueUrl.Value).toEqual({ Ref: expect.stringMatching(/^ThumbnailHighQueue/) });
    expect(full.json.Outputs.ReportHighQueueUrl.Value).toEqual({ Ref: expect.stringMatching(/^ReportHighQueue/) });
    expect(full.json.Outputs.ReportDlqUrl.Value).toEqual({ Ref: expect.stringMatching(/^ReportDlq/) });
  });

  it('owns no account-level resource (API Gateway CloudWatch role, account settings)', () => {
    const types = Object.values(full.json.Resources as Record<string, any>).map((r) => r.Type as string);
    expect(types).not.toContain('AWS::ApiGateway::Account');
    for (const [id, role] of resourcesOfType(full.json, 'AWS::IAM::Role')) {
      expect(JSON.stringify(role.Properties.ManagedPolicyArns ?? []), id).not.toContain('AmazonAPIGatewayPushToCloudWatchLogs');
      expect(JSON.stringify(role.Properties.AssumeRolePolicyDocument), id).not.toContain('apigateway.amazonaws.com');
    }
    expect(JSON.stringify(full.json)).not.toContain('AmazonAPIGatewayPushToCloudWatchLogs');
  });

  it('grants each function exactly the actions it calls, on its own resources', () => {
    const worker = (type: string) => functionByDescription(plain, new RegExp(`^offload ${type} worker`))[1];
    const eventSource = ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'];
    expect(actionsOf(plain, worker('thumbnail'))).toEqual(
      [...eventSource, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 's3:GetObject', 's3:ListBucket', 's3:PutObject'].sort(),
    );
    expect(actionsOf(plain, worker('report'))).toEqual(
      [...eventSource, 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 's3:AbortMultipartUpload', 's3:PutObject'].sort(),
    );
    // Each worker writes only under its own results prefix, and changes visibility only on its own queue.
    expect(actionsOn(plain, worker('thumbnail'), '/thumbnails/*')).toEqual(['s3:PutObject']);
    expect(actionsOn(plain, worker('thumbnail'), '/reports/*')).toEqual([]);
    expect(actionsOn(plain, worker('report'), '/reports/*')).toEqual(['s3:AbortMultipartUpload', 's3:PutObject']);
    expect(actionsOn(plain, worker('report'), '/thumbnails/*')).toEqual([]);
    expect(actionsOn(plain, worker('report'), 'ThumbnailQueue')).toEqual([]);
    expect(actionsOn(plain, worker('report'), 'ThumbnailHighQueue')).toEqual([]);
    // The retry backoff (ChangeMessageVisibility) on both of its own lanes.
    const visibilityOn = statementsOf(plain, worker('thumbnail'))
      .filter((st) => [st.Action].flat().includes('sqs:ChangeMessageVisibility'))
      .flatMap((st) => [st.Resource].flat().map((r: any) => r['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')));
    expect([...new Set(visibilityOn)].sort()).toEqual(['ThumbnailHighQueue', 'ThumbnailQueue']);
    expect(actionsOn(plain, worker('report'), `/index/${INDEXES.byType}`)).toEqual(['dynamodb:Query']);
    // ListBucket only under the two lanes' upload prefixes.
    const list = statementsOf(plain, worker('thumbnail')).find((st) => st.Action === 's3:ListBucket');
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['priority-uploads/*', 'uploads/*'] } });
    expect(actionsOn(plain, worker('thumbnail'), '/priority-uploads/*')).toEqual(['s3:GetObject']);

    const [, api] = functionByDescription(plain, /^offload API/);
    // The API function outlives a full long-poll (and its margin), within API Gateway's 29 s.
    expect(api.Properties.Timeout).toBeGreaterThanOrEqual(MAX_WAIT_SECONDS + 2);
    expect(api.Properties.Timeout).toBeLessThanOrEqual(29);
    expect(actionsOf(plain, api)).toEqual(
      ['cloudwatch:GetMetricData', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 's3:GetObject', 's3:PutObject', 'sqs:GetQueueAttributes', 'sqs:SendMessage'].sort(),
    );
    // GET /queues reads the counts of every work queue and DLQ, nothing else of SQS; GetMetricData has no resource-level permissions.
    const counts = statementsOf(plain, api).find((st) => st.Action === 'sqs:GetQueueAttributes');
    expect(counts.Resource.map((r: any) => r['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(
      ['ReportDlq', 'ReportHighQueue', 'ReportQueue', 'ThumbnailDlq', 'ThumbnailHighQueue', 'ThumbnailQueue'].sort(),
    );
    expect(statementsOf(plain, api).find((st) => st.Action === 'cloudwatch:GetMetricData').Resource).toBe('*');
    expect(actionsOn(plain, api, `/index/${INDEXES.byType}`)).toEqual(['dynamodb:Query']);
    expect(actionsOn(plain, api, '/uploads/*')).toEqual(['s3:PutObject']);
    expect(actionsOn(plain, api, '/priority-uploads/*')).toEqual(['s3:PutObject']);
    const getObject = statementsOf(plain, api).find((st) => st.Action === 's3:GetObject');
    expect(JSON.stringify(getObject.Resource)).toContain('/reports/*');
    expect(JSON.stringify(getObject.Resource)).toContain('/thumbnails/*');
    // SendMessage only to the queues (both lanes) of JSON-input types (thumbnail jobs arrive through S3 events).
    const send = statementsOf(plain, api).filter((st) => [st.Action].flat().includes('sqs:SendMessage'));
    expect(send.flatMap((st) => [st.Resource].flat().map((r: any) => r['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, ''))).sort()).toEqual(['ReportHighQueue', 'ReportQueue']);

    const [, notifier] = functionByDescription(plain, /^offload notifier/);
    expect(actionsOf(plain, notifier)).toEqual(
      ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams', 'kms:Decrypt', 'kms:GenerateDataKey', 'sns:Publish', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'].sort(),
    );
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

  it('requires an API key on every route but CORS preflight, the OpenAPI document and the console page', () => {
    const methods = resourcesOfType(plain.json, 'AWS::ApiGateway::Method');
    const pathOf = (m: any): string => {
      const ref = m.Properties.ResourceId.Ref as string | undefined;
      if (!ref) return '/';
      const parts: string[] = [];
      for (let id: string | undefined = ref; id; ) {
        const r: any = plain.json.Resources[id];
        parts.unshift(r.Properties.PathPart);
        id = r.Properties.ParentId.Ref;
      }
      return `/${parts.join('/')}`;
    };
    const routes = methods.filter(([, m]) => m.Properties.HttpMethod !== 'OPTIONS');
    expect(routes.map(([, m]) => `${m.Properties.HttpMethod} ${pathOf(m)}`).sort()).toEqual(
      ['GET /', 'GET /console/{file}', 'GET /jobs', 'GET /jobs/{jobId}', 'DELETE /jobs/{jobId}', 'GET /openapi.json', 'GET /queues', 'POST /jobs', 'POST /reports', 'POST /uploads'].sort(),
    );
    // Every submit declares the optional Idempotency-Key header; a long-poll its waitSeconds.
    for (const [, m] of routes.filter(([, m]) => m.Properties.HttpMethod === 'POST')) {
      expect(m.Properties.RequestParameters, pathOf(m)).toEqual({ 'method.request.header.Idempotency-Key': false });
    }
    const getJob = routes.find(([, m]) => m.Properties.HttpMethod === 'GET' && pathOf(m) === '/jobs/{jobId}')![1];
    expect(getJob.Properties.RequestParameters).toEqual({ 'method.request.path.jobId': true, 'method.request.querystring.waitSeconds': false });
    const keyless = ['/', '/console/{file}', '/openapi.json'];
    for (const [, m] of routes) expect(m.Properties.ApiKeyRequired, `${m.Properties.HttpMethod} ${pathOf(m)}`).toBe(!keyless.includes(pathOf(m)));
    const preflight = methods.filter(([, m]) => m.Properties.HttpMethod === 'OPTIONS');
    expect(preflight.map(([, m]) => pathOf(m)).sort()).toEqual(['/jobs', '/jobs/{jobId}', '/queues', '/reports', '/uploads']);
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
    expect(posts.length).toBe(3);
    const models = Object.fromEntries(resourcesOfType(plain.json, 'AWS::ApiGateway::Model').map(([id, m]) => [id, m.Properties]));
    const modelNames: string[] = [];
    for (const [, m] of posts) {
      expect(m.Properties.RequestValidatorId).toBeDefined();
      expect(Object.keys(m.Properties.RequestModels)).toEqual(['application/json']);
      const model = models[m.Properties.RequestModels['application/json'].Ref];
      expect(model.ContentType).toBe('application/json');
      expect(model.Schema.$schema).toBe('http://json-schema.org/draft-04/schema#');
      modelNames.push(model.Name);
    }
    expect(modelNames.sort()).toEqual(['CreateReportRequest', 'CreateUploadRequest', 'SubmitRequest']);
    // draft-04 (API Gateway's dialect): an exclusive minimum is a boolean beside `minimum`.
    const upload = Object.values(models).find((m: any) => m.Name === 'CreateUploadRequest') as any;
    expect(upload.Schema.properties.size).toMatchObject({ type: 'number', minimum: 0, exclusiveMinimum: true });
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
    expect(byType.BAD_REQUEST_BODY.ResponseTemplates['application/json']).toBe('{"error":{"code":"invalid_request","message":$context.error.messageString}}');
  });

  it('renders every gateway response as valid JSON, whatever the error message holds', () => {
    // API Gateway substitutes $context variables into a gateway response template unescaped.
    // Only $context.error.messageString comes as a quoted, escaped JSON string; every other
    // value (message, validationErrorString, httpMethod, path...) is inserted raw.
    const nasty = 'Invalid request body: "size" must be > 0 \\ C:\\path\nsecond line\t{"x":1}';
    const values: Record<string, string> = {
      '$context.error.messageString': JSON.stringify(nasty),
      '$context.httpMethod': 'DELETE',
      '$context.path': '/v1/no/such-route',
    };
    const render = (template: string): string =>
      template.replace(/\$(?:context\.[A-Za-z0-9_.]*[A-Za-z0-9_]|input\.[A-Za-z0-9_.]*[A-Za-z0-9_])/g, (v) => values[v] ?? nasty);
    const responses = resourcesOfType(plain.json, 'AWS::ApiGateway::GatewayResponse');
    expect(responses.length).toBeGreaterThanOrEqual(10);
    for (const [id, r] of responses) {
      for (const [contentType, template] of Object.entries(r.Properties.ResponseTemplates as Record<string, string>)) {
        const rendered = render(template);
        let body: any;
        expect(() => (body = JSON.parse(rendered)), `${id} ${contentType}: ${rendered}`).not.toThrow();
        expect(body.error.code, id).toMatch(/^[a-z_]+$/);
        expect(typeof body.error.message, id).toBe('string');
        if (template.includes('$context.error.messageString')) expect(body.error.message, id).toBe(nasty);
      }
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

  it('sends ObjectCreated under uploads/ to the thumbnails queue and under priority-uploads/ to its high queue, from the bucket itself', () => {
    const raw = buckets(plain).find(([, b]) => b.Properties.NotificationConfiguration);
    expect(raw).toBeDefined();
    const [rawId, bucket] = raw!;
    const qc = bucket.Properties.NotificationConfiguration.QueueConfigurations;
    expect(qc).toEqual([
      {
        Event: 's3:ObjectCreated:*',
        Queue: { 'Fn::GetAtt': [expect.stringMatching(/^ThumbnailHighQueue/), 'Arn'] },
        Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'priority-uploads/' }] } },
      },
      {
        Event: 's3:ObjectCreated:*',
        Queue: { 'Fn::GetAtt': [expect.stringMatching(/^ThumbnailQueue/), 'Arn'] },
        Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'uploads/' }] } },
      },
    ]);
    // S3 refuses overlapping prefixes for one event type.
    const prefixes: string[] = qc.map((c: any) => c.Filter.S3Key.Rules[0].Value);
    for (const a of prefixes) for (const b of prefixes) if (a !== b) expect(a.startsWith(b), `${a} / ${b}`).toBe(false);
    // The bucket waits for the queue policies that let S3 send (one per lane), and they do not reference the bucket.
    const queuePolicies = resourcesOfType(plain.json, 'AWS::SQS::QueuePolicy').filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes('s3.amazonaws.com'));
    expect(queuePolicies.map(([, p]) => p.Properties.Queues[0].Ref.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(['ThumbnailHighQueue', 'ThumbnailQueue']);
    for (const [id, p] of queuePolicies) {
      expect(bucket.DependsOn).toContain(id);
      expect(JSON.stringify(p)).not.toContain(rawId);
    }
  });
});

describe('queues and workers', () => {
  const queues = (s: Synthesized) => resourcesOfType(s.json, 'AWS::SQS::Queue');
  const workQueues = (s: Synthesized) => queues(s).filter(([, q]) => q.Properties.RedrivePolicy);

  it('has two queues (lanes) per job type and one DLQ (14 days) for both, after 3 receives, kept maxQueuedSeconds', () => {
    expect(queues(plain).length).toBe(7); // 2 types x (normal + high + DLQ) + the notifier's DLQ
    const work = workQueues(plain);
    expect(work.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(['ReportHighQueue', 'ReportQueue', 'ThumbnailHighQueue', 'ThumbnailQueue']);
    const dlqOf = (prefix: string) => work.find(([id]) => id.startsWith(prefix))![1].Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    // Both lanes of a type share its DLQ (a redrive returns each message to the lane it came from); types do not.
    expect(dlqOf('ThumbnailHighQueue')).toBe(dlqOf('ThumbnailQueue'));
    expect(dlqOf('ReportHighQueue')).toBe(dlqOf('ReportQueue'));
    expect(dlqOf('ThumbnailQueue')).not.toBe(dlqOf('ReportQueue'));
    const dlqIds = new Set(work.map(([, q]) => q.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]));
    expect(dlqIds.size).toBe(2);
    for (const [, q] of work) expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(3);
    for (const [, q] of work) expect(q.Properties.MessageRetentionPeriod).toBe(4 * 86400);
    for (const id of dlqIds) expect(plain.json.Resources[id].Properties.MessageRetentionPeriod).toBe(14 * 86400);
    const custom = workQueues(synth({ maxReceiveCount: '5', 'jobs.report.maxReceiveCount': '2', 'jobs.report.maxQueuedSeconds': '3600' }, { bundle: false }));
    const byId = (prefix: string) => custom.find(([id]) => id.startsWith(prefix))![1].Properties;
    expect(byId('ThumbnailQueue').RedrivePolicy.maxReceiveCount).toBe(5);
    expect(byId('ReportHighQueue').RedrivePolicy.maxReceiveCount).toBe(2);
    expect(byId('ReportHighQueue').MessageRetentionPeriod).toBe(3600);
    expect(byId('ThumbnailQueue').MessageRetentionPeriod).toBe(4 * 86400);
    expect(byId('ReportQueue').RedrivePolicy.maxReceiveCount).toBe(2);
    expect(byId('ReportQueue').MessageRetentionPeriod).toBe(3600);
  });

  it('encrypts every queue and refuses non-TLS requests', () => {
    for (const [, q] of queues(plain)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = resourcesOfType(plain.json, 'AWS::SQS::QueuePolicy');
    expect(policies.length).toBe(7);
    for (const [, p] of policies) {
      expect(JSON.stringify(p.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('derives each visibility timeout from its worker timeout (6x), never typed by hand', () => {
    const s = synth({ thumbnailTimeoutSeconds: '20', reportTimeoutSeconds: '300' }, { bundle: false });
    const fns = workerFunctions(s);
    const timeouts = new Map<string, number>();
    for (const [id, fn] of fns) timeouts.set(id, fn.Properties.Timeout);
    const mappings = sqsMappings(s);
    expect(mappings.length).toBe(4);
    for (const [, m] of mappings) {
      const fnId = m.Properties.FunctionName.Ref;
      const queueId = m.Properties.EventSourceArn['Fn::GetAtt'][0];
      expect(s.json.Resources[queueId].Properties.VisibilityTimeout).toBe(6 * timeouts.get(fnId)!);
    }
    expect([...timeouts.values()].sort((a, b) => a - b)).toEqual([20, 300]);
    // The per-type context key works as the legacy alias does.
    const nested = workerFunctions(synth({ 'jobs.thumbnail.timeoutSeconds': '45' }, { bundle: false }));
    expect(nested.find(([, f]) => /thumbnail/.test(f.Properties.Description))![1].Properties.Timeout).toBe(45);
  });

  it('reports partial batch failures, with configurable batch size and maximum concurrency (reports: 2)', () => {
    const mappings = sqsMappings(plain).map(([, m]) => m.Properties);
    expect(mappings.length).toBe(4);
    for (const m of mappings) expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    /** Each lane's concurrency, by the queue's construct id and the worker it feeds. */
    const lanes = (s: Synthesized) =>
      Object.fromEntries(
        sqsMappings(s).map(([, m]) => [
          `${m.Properties.EventSourceArn['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')} -> ${m.Properties.FunctionName.Ref.replace(/[0-9A-F]{8}$/, '')}`,
          m.Properties.ScalingConfig.MaximumConcurrency,
        ]),
      );
    // Two event sources on the same worker; the high lane gets twice the normal lane's concurrency by default.
    expect(lanes(plain)).toEqual({
      'ThumbnailQueue -> ThumbnailWorkerFunction': 20,
      'ThumbnailHighQueue -> ThumbnailWorkerFunction': 40,
      'ReportQueue -> ReportWorkerFunction': 2,
      'ReportHighQueue -> ReportWorkerFunction': 4,
    });
    expect(lanes(synth({ 'jobs.report.highMaxConcurrency': '3', thumbnailMaxConcurrency: '5' }, { bundle: false }))).toMatchObject({
      'ThumbnailHighQueue -> ThumbnailWorkerFunction': 10,
      'ReportHighQueue -> ReportWorkerFunction': 3,
      'ReportQueue -> ReportWorkerFunction': 2,
    });
    const custom = sqsMappings(
      synth({ thumbnailBatchSize: '10', thumbnailBatchingWindowSeconds: '2', thumbnailMaxConcurrency: '7' }, { bundle: false }),
    ).map(([, m]) => m.Properties);
    expect(custom).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ BatchSize: 10, MaximumBatchingWindowInSeconds: 2, ScalingConfig: { MaximumConcurrency: 7 } }),
        expect.objectContaining({ BatchSize: 10, MaximumBatchingWindowInSeconds: 2, ScalingConfig: { MaximumConcurrency: 14 } }),
      ]),
    );
  });

  it('tells each worker both of its lanes, and the API both lanes of every type', () => {
    const [, thumb] = functionByDescription(plain, /^offload thumbnail worker/);
    const env = thumb.Properties.Environment.Variables;
    expect(env.QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^ThumbnailQueue/) });
    expect(env.HIGH_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^ThumbnailHighQueue/) });
    const [, api] = functionByDescription(plain, /^offload API/);
    const jobTypes = JSON.stringify(api.Properties.Environment.Variables.JOB_TYPES);
    for (const id of ['ThumbnailQueue', 'ThumbnailHighQueue', 'ReportQueue', 'ReportHighQueue']) expect(jobTypes).toMatch(new RegExp(`"Ref":"${id}[0-9A-F]{8}"`));
    expect(jobTypes).toContain('highQueueUrl');
  });

  it('runs every function on arm64 and the current Node.js runtime, with its own log group and retention', () => {
    const fns = resourcesOfType(plain.json, 'AWS::Lambda::Function');
    expect(fns.length).toBe(5); // api, thumbnail worker, report worker, sweeper, notifier
    for (const [, fn] of fns) {
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Runtime).toBe('nodejs24.x');
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
    const groups = resourcesOfType(plain.json, 'AWS::Logs::LogGroup');
    expect(groups.length).toBe(6); // one per function + API access logs
    for (const [, g] of groups) expect(g.Properties.RetentionInDays).toBe(30);
  });

  it('rejects a bad context value at synth time', () => {
    expect(() => synth({ reportMaxConcurrency: '1' }, { bundle: false })).toThrow(/reportMaxConcurrency/);
    expect(() => synth({ thumbnailTimeoutSeconds: 'soon' }, { bundle: false })).toThrow(/thumbnailTimeoutSeconds: "soon" is not a whole number/);
    expect(() => synth({ 'jobs.thumbnail.timeoutSeconds': '0' }, { bundle: false })).toThrow(/context jobs\.thumbnail\.timeoutSeconds: "0" is not a whole number from 1 to 900/);
    expect(() => synth({ 'jobs.thumbnail.nope': '1' }, { bundle: false })).toThrow(/context jobs\.thumbnail\.nope: thumbnail has no setting nope/);
    expect(() => synth({ jobs: { report: { maxConcurrency: 1 } } }, { bundle: false })).toThrow(/jobs\.report\.maxConcurrency/);
    expect(() => synth({ sweepIntervalMinutes: 'often' }, { bundle: false })).toThrow(/sweepIntervalMinutes: expected a number/);
  });
});

describe('jobs table', () => {
  it('is on-demand with point-in-time recovery, TTL, a stream and a type/createdAt index', () => {
    plain.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    plain.template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({
          IndexName: INDEXES.byType,
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
  it('runs on a schedule over a sparse deadline index, with only UpdateItem on the table and Query on that index', () => {
    const [sweeperId, sweeper] = functionByDescription(plain, /^offload sweeper/);
    const rules = resourcesOfType(plain.json, 'AWS::Events::Rule');
    expect(rules.length).toBe(1);
    expect(rules[0][1].Properties).toMatchObject({ ScheduleExpression: 'rate(5 minutes)', State: 'ENABLED' });
    expect(rules[0][1].Properties.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [sweeperId, 'Arn'] } })]);
    const custom = resourcesOfType(synth({ sweepIntervalMinutes: '15' }, { bundle: false }).json, 'AWS::Events::Rule');
    expect(custom[0][1].Properties.ScheduleExpression).toBe('rate(15 minutes)');

    plain.template.hasResourceProperties('AWS::DynamoDB::Table', {
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: 'sweepShard', AttributeType: 'S' },
        { AttributeName: 'sweepAt', AttributeType: 'N' },
      ]),
      GlobalSecondaryIndexes: Match.arrayWith([
        {
          IndexName: INDEXES.byDeadline,
          KeySchema: [
            { AttributeName: 'sweepShard', KeyType: 'HASH' },
            { AttributeName: 'sweepAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['type', 'status', 'cancelRequested'] },
        },
      ]),
    });
    const [, table] = resourcesOfType(plain.json, 'AWS::DynamoDB::Table')[0];
    expect(table.Properties.GlobalSecondaryIndexes.map((i: any) => i.IndexName).sort()).toEqual([INDEXES.byDeadline, INDEXES.byType].sort());

    // Table-based: it reads no queue and needs no grace settings.
    expect(actionsOf(plain, sweeper)).toEqual(['dynamodb:Query', 'dynamodb:UpdateItem']);
    const [tableId] = resourcesOfType(plain.json, 'AWS::DynamoDB::Table')[0];
    const statements = statementsOf(plain, sweeper).filter((st) => !String(st.Action).startsWith('logs:'));
    expect(statements.map((st) => [st.Action, st.Resource])).toEqual(
      expect.arrayContaining([
        ['dynamodb:UpdateItem', { 'Fn::GetAtt': [tableId, 'Arn'] }],
        ['dynamodb:Query', { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, `/index/${INDEXES.byDeadline}`]] }],
      ]),
    );
    expect(statements.length).toBe(2);
    expect(JSON.stringify(statementsOf(plain, sweeper))).not.toContain('sqs:ReceiveMessage');
    expect(Object.keys(sweeper.Properties.Environment.Variables).filter((k) => /GRACE|QUEUE|DLQ/.test(k))).toEqual([]);
  });
});

describe('notifier', () => {
  it('relays terminal jobs from the table stream: filtered, bisected, retried, partial failures, DLQ on failure', () => {
    const [notifierId, notifier] = functionByDescription(plain, /^offload notifier/);
    const [tableId] = resourcesOfType(plain.json, 'AWS::DynamoDB::Table')[0];
    const mappings = resourcesOfType(plain.json, 'AWS::Lambda::EventSourceMapping').filter(([, m]) => m.Properties.FunctionName.Ref === notifierId);
    expect(mappings.length).toBe(1);
    const m = mappings[0][1].Properties;
    expect(m.EventSourceArn).toEqual({ 'Fn::GetAtt': [tableId, 'StreamArn'] });
    expect(m).toMatchObject({
      StartingPosition: 'TRIM_HORIZON',
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(m.MaximumRetryAttempts).toBeGreaterThan(0);
    expect(m.MaximumRecordAgeInSeconds).toBeGreaterThan(0);
    const dlqId = m.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0];
    expect(plain.json.Resources[dlqId].Type).toBe('AWS::SQS::Queue');
    expect(plain.json.Resources[dlqId].Properties.SqsManagedSseEnabled).toBe(true);
    const patterns = m.FilterCriteria.Filters.map((f: any) => JSON.parse(f.Pattern));
    expect(patterns).toEqual([{ eventName: ['INSERT', 'MODIFY'], dynamodb: { NewImage: { status: { S: ['succeeded', 'failed', 'cancelled'] } } } }]);
    // It publishes to the completion topic, named in its environment.
    const completion = resourcesOfType(plain.json, 'AWS::SNS::Topic').find(([, t]) => t.Properties.DisplayName !== 'offload alarms')![0];
    expect(notifier.Properties.Environment.Variables.TOPIC_ARN).toEqual({ Ref: completion });
    expect(statementsOf(plain, notifier).find((st) => st.Action === 'sns:Publish')!.Resource).toEqual({ Ref: completion });
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
    expect(byMetric('ApproximateNumberOfMessagesVisible').length).toBe(3); // each type's DLQ + the notifier's
    for (const a of byMetric('ApproximateNumberOfMessagesVisible')) {
      expect(a.Threshold).toBe(0);
      expect(a.ComparisonOperator).toBe('GreaterThanThreshold');
    }
    // Both lanes of each type.
    expect(byMetric('ApproximateAgeOfOldestMessage').map((a) => a.Threshold)).toEqual([900, 900, 900, 900]);
    expect(byMetric('Errors').length).toBe(5); // 2 workers, API, sweeper, notifier
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
