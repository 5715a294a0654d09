import { APIGatewayClient, GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { ApiClient } from './api-client';
import { loadConfigSources, normalizeBaseUrl, resolveConfig, type GlobalFlags, type ResolvedConfig } from './config';
import { CliError, UsageError } from './errors';
import { Terminal } from './output';

export interface AwsClientConfig {
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** One line for an AWS SDK error: `QueueDoesNotExist: The specified queue does not exist.` */
export function awsErrorMessage(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'CredentialsProviderError') return `no AWS credentials (${e.message}); configure the AWS credential chain or AWS_PROFILE`;
  const name = e?.name && e.name !== 'Error' ? `${e.name}: ` : '';
  return `${name}${(e?.message ?? String(err)).replace(/\s*\n\s*/g, ' ')}`;
}

/**
 * What every command gets: the terminal, the resolved configuration, and lazy access to the
 * API client, the stack outputs and AWS client settings (nothing is fetched until a command
 * needs it, so `offload status` never needs AWS credentials when the key is configured).
 */
export class CliContext {
  private outputsPromise?: Promise<Record<string, string>>;

  constructor(
    readonly term: Terminal,
    readonly config: ResolvedConfig,
    /** The directory relative paths (files to upload, --out) are resolved against. */
    readonly cwd: string = process.cwd(),
  ) {}

  static load(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd(), term = new Terminal()): CliContext {
    return new CliContext(term, resolveConfig(loadConfigSources(flags, env, cwd)), cwd);
  }

  /** Settings for AWS SDK clients: the emulator endpoint and test credentials in local mode, else the default chain. */
  aws(): AwsClientConfig {
    const { endpoint, region, testCredentials } = this.config.aws;
    const cfg: AwsClientConfig = {};
    if (endpoint) cfg.endpoint = endpoint;
    if (region) cfg.region = region;
    if (testCredentials) cfg.credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    return cfg;
  }

  /** The stack outputs, from a file or (with --stack) from CloudFormation; `required` keys must be there. */
  async stackOutputs(required: readonly string[] = []): Promise<Record<string, string>> {
    this.outputsPromise ??= this.loadOutputs();
    const outputs = await this.outputsPromise;
    const missing = required.filter((k) => !outputs[k]);
    if (missing.length > 0) throw new UsageError(`the stack outputs lack ${missing.join(', ')}`);
    return outputs;
  }

  private async loadOutputs(): Promise<Record<string, string>> {
    if (this.config.outputs) return this.config.outputs.value;
    const stack = this.config.stackName;
    if (!stack) {
      throw new UsageError(
        this.config.outputsProblem ??
          'no stack outputs: run where .offload/local.json or .offload/outputs.json is, or pass --config PATH, --outputs-file PATH or --stack NAME',
      );
    }
    const cfn = new CloudFormationClient(this.aws());
    try {
      const res = await cfn.send(new DescribeStacksCommand({ StackName: stack }));
      const outputs: Record<string, string> = {};
      for (const o of res.Stacks?.[0]?.Outputs ?? []) if (o.OutputKey && o.OutputValue) outputs[o.OutputKey] = o.OutputValue;
      return outputs;
    } catch (err) {
      throw new UsageError(`cannot read the outputs of stack ${stack}: ${awsErrorMessage(err)}`);
    } finally {
      cfn.destroy();
    }
  }

  /** The API client: URL and key from the configuration, the key's value fetched from API Gateway as a last resort. */
  async api(): Promise<ApiClient> {
    let apiUrl = this.config.apiUrl?.value;
    if (!apiUrl && this.config.stackName) apiUrl = normalizeBaseUrl((await this.stackOutputs(['ApiUrl'])).ApiUrl);
    if (!apiUrl) {
      throw new UsageError(
        'no API URL: pass --api URL or set OFFLOAD_API_URL, or run where .offload/local.json or .offload/outputs.json is (or pass --config, --outputs-file or --stack)',
      );
    }
    let apiKey = this.config.apiKey?.value;
    if (!apiKey) apiKey = await this.fetchApiKey(apiUrl);
    return new ApiClient(apiUrl, apiKey);
  }

  /** GetApiKey(includeValue) for the stack's key, only when the API URL is that stack's. */
  private async fetchApiKey(apiUrl: string): Promise<string> {
    const noKey = 'no API key: pass --api-key KEY or set OFFLOAD_API_KEY';
    let outputs: Record<string, string> | undefined;
    if (this.config.outputs || this.config.stackName) outputs = await this.stackOutputs().catch(() => undefined);
    if (!outputs) throw new UsageError(noKey);
    if (!outputs.ApiKeyId) throw new UsageError(`${noKey} (the stack outputs have no ApiKeyId to fetch it with)`);
    if (!outputs.ApiUrl || normalizeBaseUrl(outputs.ApiUrl) !== apiUrl) {
      throw new UsageError(`${noKey} (${apiUrl} is not the API of the stack outputs, whose key could be fetched)`);
    }
    const apigw = new APIGatewayClient(this.aws());
    try {
      const res = await apigw.send(new GetApiKeyCommand({ apiKey: outputs.ApiKeyId, includeValue: true }));
      if (!res.value) throw new Error('API Gateway returned no value');
      return res.value;
    } catch (err) {
      throw new UsageError(`${noKey} (fetching key ${outputs.ApiKeyId} from API Gateway failed: ${awsErrorMessage(err)})`);
    } finally {
      apigw.destroy();
    }
  }
}

/** Wraps an AWS call's failure as a one-line CLI error (exit 1). */
export function awsFailure(what: string, err: unknown): CliError {
  return new CliError(`${what}: ${awsErrorMessage(err)}`);
}
