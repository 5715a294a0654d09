import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OffloadStack } from '../../lib/offload-stack';

/** The feature flags and context of cdk.json, which the CLI passes to `cdk synth`. */
const CDK_JSON_CONTEXT = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;

export interface Synthesized {
  template: Template;
  json: Record<string, any>;
  outdir: string;
  templatePath: string;
  stack: OffloadStack;
}

/**
 * Synthesizes the stack. `bundle: false` skips asset bundling (CDK's own switch,
 * `aws:cdk:bundling-stacks`), for the many variants that only look at properties; the
 * default synth bundles for real, as `cdk synth` does, with cdk-nag attached.
 */
export function synth(context: Record<string, unknown> = {}, opts: { bundle?: boolean; nag?: boolean } = {}): Synthesized {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-synth-'));
  const app = new App({
    outdir,
    context: { ...CDK_JSON_CONTEXT, 'aws:cdk:enable-asset-metadata': true, ...context, ...(opts.bundle === false ? { 'aws:cdk:bundling-stacks': [] } : {}) },
  });
  if (opts.nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stack = new OffloadStack(app, 'Offload', { env: { account: '123456789012', region: 'us-east-1' } });
  const assembly = app.synth();
  const templatePath = path.join(assembly.directory, stack.templateFile);
  const json = JSON.parse(fs.readFileSync(templatePath, 'utf8'));
  return { template: Template.fromJSON(json), json, outdir: assembly.directory, templatePath, stack };
}

export function resourcesOfType(json: Record<string, any>, type: string): [string, any][] {
  return Object.entries(json.Resources as Record<string, any>).filter(([, r]) => r.Type === type);
}
