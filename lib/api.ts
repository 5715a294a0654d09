import { RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { AnyJobType } from '../lambda/shared/job-type';
import { OffloadFunction } from './offload-function';
import { jsonSchema, submitModelSchema } from './openapi';

export interface ApiProps {
  /** The generated entry of the API function (lib/entries.ts). */
  entryFile: string;
  /** The stack's job types: their routes and models. */
  jobTypes: readonly AnyJobType[];
  environment: Record<string, string>;
  timeoutSeconds: number;
  memoryMb: number;
  logRetentionDays: number;
  removalPolicy: RemovalPolicy;
  corsOrigins: string[];
  rateLimit: number;
  burstLimit: number;
  quotaPerDay: number;
}

/** Error body of every gateway-generated response: the same `{ error: { code, message } }` the function returns. */
function errorTemplate(code: string, message: string): Record<string, string> {
  return { 'application/json': `{"error":{"code":"${code}","message":${message}}}` };
}

/**
 * The REST API: every route behind an API key (usage plan with throttling and a daily
 * quota), CORS, JSON access logs, request validation for JSON bodies, binary media types
 * for direct image uploads, and gateway responses that speak the API's JSON error format.
 * All routes go to one small API function (Lambda proxy integration).
 */
export class Api extends Construct {
  readonly restApi: apigw.RestApi;
  readonly handler: OffloadFunction;
  readonly apiKey: apigw.ApiKey;
  readonly usagePlan: apigw.UsagePlan;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);

    this.handler = new OffloadFunction(this, 'Handler', {
      entryFile: props.entryFile,
      description: 'offload API: accepts jobs, answers their status',
      timeoutSeconds: props.timeoutSeconds,
      memoryMb: props.memoryMb,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      environment: props.environment,
    });

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });

    this.restApi = new apigw.RestApi(this, 'RestApi', {
      description: 'offload: hand slow work to queues, get a job id back at once',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      apiKeySourceType: apigw.ApiKeySourceType.HEADER,
      binaryMediaTypes: [...new Set(props.jobTypes.flatMap((t) => (t.routes ?? []).flatMap((r) => r.binaryMediaTypes ?? [])))],
      // API Gateway writes access logs through one account-wide role. The stack does not own
      // it: deleting a stack that did would break logging for every REST API in the account
      // and region. Set it once per account (README, Deploy).
      cloudWatchRole: false,
      deployOptions: {
        stageName: 'v1',
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        metricsEnabled: true,
        throttlingRateLimit: props.rateLimit,
        throttlingBurstLimit: props.burstLimit,
      },
      defaultMethodOptions: { apiKeyRequired: true },
      // CORS preflight is answered by the API function (OPTIONS methods below), not by MOCK
      // integrations: emulators' CloudFormation (moto) cannot create MOCK methods, and the
      // function already knows the allowed origins.
    });

    // The stack exports the URL as `ApiUrl`; drop the RestApi's own auto-named output.
    this.restApi.node.tryRemoveChild('Endpoint');
    this.addGatewayResponses(props.corsOrigins);

    const validator = this.restApi.addRequestValidator('BodyValidator', {
      requestValidatorName: 'json-body',
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const model = (name: string, schema: Record<string, unknown>): apigw.Model =>
      this.restApi.addModel(name, { contentType: 'application/json', modelName: name, schema: schema as apigw.JsonSchema });

    const integration = new apigw.LambdaIntegration(this.handler.fn, { proxy: true });
    const preflighted = new Set<string>();
    const resource = (p: string): apigw.Resource => {
      const r = this.restApi.root.resourceForPath(p);
      if (!preflighted.has(r.path)) {
        preflighted.add(r.path);
        // Browsers send preflight requests without credentials, so these need no key.
        r.addMethod('OPTIONS', integration, { apiKeyRequired: false, operationName: 'Preflight' });
      }
      return r;
    };
    // Every submit takes an optional Idempotency-Key (checked by the function: 1-255 printable ASCII).
    const submitParameters = { 'method.request.header.Idempotency-Key': false };
    resource('/jobs').addMethod('POST', integration, {
      operationName: 'SubmitJob',
      requestParameters: submitParameters,
      requestValidator: validator,
      requestModels: { 'application/json': model('SubmitRequest', submitModelSchema()) },
    });
    resource('/jobs').addMethod('GET', integration, {
      operationName: 'ListJobs',
      requestParameters: {
        'method.request.querystring.type': false,
        'method.request.querystring.status': false,
        'method.request.querystring.limit': false,
        'method.request.querystring.cursor': false,
      },
    });
    resource('/jobs/{jobId}').addMethod('GET', integration, {
      operationName: 'GetJob',
      requestParameters: { 'method.request.path.jobId': true, 'method.request.querystring.waitSeconds': false },
    });
    resource('/jobs/{jobId}').addMethod('DELETE', integration, {
      operationName: 'CancelJob',
      requestParameters: { 'method.request.path.jobId': true },
    });
    // The OpenAPI document holds nothing secret: no key needed.
    this.restApi.root.resourceForPath('/openapi.json').addMethod('GET', integration, { operationName: 'OpenApi', apiKeyRequired: false });
    // The console: a page and its two files, nothing secret in them (the person types the key
    // into the page): no key needed. Its queue figures need one.
    this.restApi.root.addMethod('GET', integration, { operationName: 'Console', apiKeyRequired: false });
    this.restApi.root.resourceForPath('/console/{file}').addMethod('GET', integration, {
      operationName: 'ConsoleFile',
      apiKeyRequired: false,
      requestParameters: { 'method.request.path.file': true },
    });
    resource('/queues').addMethod('GET', integration, { operationName: 'Queues' });
    for (const type of props.jobTypes) {
      for (const route of type.routes ?? []) {
        resource(route.path).addMethod(route.method, integration, {
          operationName: route.operationName,
          ...(route.method === 'POST' ? { requestParameters: submitParameters } : {}),
          ...(route.body
            ? { requestValidator: validator, requestModels: { 'application/json': model(`${route.operationName}Request`, jsonSchema(route.body, 'draft-04')) } }
            : {}),
        });
      }
    }

    this.apiKey = new apigw.ApiKey(this, 'Key', { description: 'offload default client key', enabled: true });
    this.usagePlan = this.restApi.addUsagePlan('UsagePlan', {
      description: 'offload default usage plan',
      throttle: { rateLimit: props.rateLimit, burstLimit: props.burstLimit },
      quota: { limit: props.quotaPerDay, period: apigw.Period.DAY },
      apiStages: [{ api: this.restApi, stage: this.restApi.deploymentStage }],
    });
    this.usagePlan.addApiKey(this.apiKey);
  }

  private addGatewayResponses(corsOrigins: string[]): void {
    const headers = {
      // A gateway response cannot echo the request's origin: it names the first allowed one.
      'Access-Control-Allow-Origin': `'${corsOrigins[0]}'`,
      'Content-Type': "'application/json'",
    };
    const responses: Array<[string, apigw.ResponseType, string, string, string]> = [
      // messageString, not validationErrorString: API Gateway substitutes both unescaped, and
      // only messageString comes quoted and escaped (validation errors hold quotes).
      ['BadBody', apigw.ResponseType.BAD_REQUEST_BODY, '400', 'invalid_request', '$context.error.messageString'],
      ['BadParameters', apigw.ResponseType.BAD_REQUEST_PARAMETERS, '400', 'invalid_request', '$context.error.messageString'],
      ['NoRoute', apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, '404', 'not_found', '"no such route: $context.httpMethod $context.path"'],
      ['BadKey', apigw.ResponseType.INVALID_API_KEY, '403', 'forbidden', '"missing or invalid API key (header x-api-key)"'],
      ['Denied', apigw.ResponseType.ACCESS_DENIED, '403', 'forbidden', '$context.error.messageString'],
      ['TooLarge', apigw.ResponseType.REQUEST_TOO_LARGE, '413', 'payload_too_large', '$context.error.messageString'],
      ['BadMediaType', apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, '415', 'unsupported_media_type', '$context.error.messageString'],
      ['Throttled', apigw.ResponseType.THROTTLED, '429', 'throttled', '$context.error.messageString'],
      ['Quota', apigw.ResponseType.QUOTA_EXCEEDED, '429', 'quota_exceeded', '$context.error.messageString'],
      ['Default4xx', apigw.ResponseType.DEFAULT_4XX, '400', 'bad_request', '$context.error.messageString'],
      ['Default5xx', apigw.ResponseType.DEFAULT_5XX, '500', 'internal_error', '$context.error.messageString'],
    ];
    for (const [id, type, statusCode, code, message] of responses) {
      // DEFAULT_4XX keeps the status API Gateway chose; every other one sets its own.
      this.restApi.addGatewayResponse(id, {
        type,
        statusCode: type === apigw.ResponseType.DEFAULT_4XX || type === apigw.ResponseType.DEFAULT_5XX ? undefined : statusCode,
        responseHeaders: headers,
        templates: errorTemplate(code, message),
      });
    }
  }
}
