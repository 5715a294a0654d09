import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { builtInJobTypes, OffloadStack } from 'offload';
import { OffloadClient, verifyWebhook } from 'offload/client';
import { createWorker, defineJobType } from 'offload/runtime';
import { wordcount } from '../fixtures/job-types/wordcount';

/** offload is importable by its package name (package.json exports), as a user's CDK app would. */
describe('package exports', () => {
  it('export the stack, the built-in types and the runtime half of a type', () => {
    expect(builtInJobTypes.map((t) => t.definition.name)).toEqual(['thumbnail', 'report']);
    expect(createWorker).toBeTypeOf('function');
    expect(defineJobType({ ...wordcount.definition })).toEqual(wordcount.definition);
  });

  it('export the producer SDK, which needs no AWS SDK', () => {
    expect(new OffloadClient({ baseUrl: 'https://api.example/v1', apiKey: 'k' })).toBeInstanceOf(OffloadClient);
    expect(verifyWebhook).toBeTypeOf('function');
    const source = fs.readFileSync(path.join(__dirname, '..', '..', 'client', 'index.ts'), 'utf8');
    const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(imports.filter((m) => !m.startsWith('node:') && !m.startsWith('../lambda/shared/model'))).toEqual([]);
  });

  it('compose the built-in types with a user type in a stack of the user’s own', () => {
    // A user's app carries the feature flags `cdk init` writes (this project's cdk.json has them); no bundling here.
    const flags = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;
    const app = new App({ context: { ...flags, 'aws:cdk:bundling-stacks': [] } });
    const stack = new OffloadStack(app, 'Jobs', { jobTypes: [...builtInJobTypes, wordcount] });
    const outputs = Template.fromStack(stack).toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.JobTypes.Value).toBe('thumbnail,report,wordcount');
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['WordcountQueueUrl', 'WordcountDlqUrl']));
  }, 120_000);
});
