import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface OffloadFunctionProps {
  /** Folder under lambda/ holding index.ts. */
  entry?: string;
  /** Or the entry file itself (a job type's worker.ts, a generated entry). */
  entryFile?: string;
  description: string;
  timeoutSeconds: number;
  memoryMb: number;
  logRetentionDays: number;
  removalPolicy: RemovalPolicy;
  environment: Record<string, string>;
  /** Native modules left out of the bundle and installed for linux-arm64 next to it. */
  nativeModules?: string[];
}

/**
 * A Lambda function bundled by local esbuild (no Docker), arm64, on the current Node.js
 * runtime, with its own log group (explicit retention, no CDK custom resource) and its own
 * role whose only built-in right is writing to that log group. Everything else is granted
 * explicitly by the construct that owns the resource.
 */
export class OffloadFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: OffloadFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (execution role)`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    const bundling: BundlingOptions = {
      format: OutputFormat.CJS,
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      // The local runtime executes these very bundles on the developer's Node.js (>= 20).
      target: 'node20',
      // The AWS SDK v3 is bundled (not taken from the runtime) so that the deployed code is
      // exactly the version that was tested.
      externalModules: [],
      // ES module builds first: they let esbuild keep only the SDK commands a function sends
      // (a third less code to load at cold start than the CommonJS builds, measured).
      mainFields: ['module', 'main'],
      nodeModules: props.nativeModules,
      environment: props.nativeModules
        ? { npm_config_os: 'linux', npm_config_cpu: 'arm64', npm_config_libc: 'glibc' }
        : undefined,
    };

    this.fn = new NodejsFunction(this, 'Function', {
      entry: props.entryFile ?? path.join(__dirname, '..', 'lambda', props.entry ?? '', 'index.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      description: props.description,
      timeout: Duration.seconds(props.timeoutSeconds),
      memorySize: props.memoryMb,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling,
      depsLockFilePath: path.join(__dirname, '..', 'package-lock.json'),
      projectRoot: path.join(__dirname, '..'),
    });
  }
}
