import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { report } from '../../job-types/report';
import { thumbnail } from '../../job-types/thumbnail';
import { DEFAULT_CORE_SETTINGS, parseSettings } from '../../lambda/shared/job-type';
import { resolveJobTypeSettings } from '../../lib/config';

/** A job type's settings as `cdk synth` resolves them: core and own defaults, context (nested, flat, legacy aliases), overrides. */
const nodeWith = (context: Record<string, unknown> = {}) => new App({ context }).node;
const platform = { maxReceiveCount: 5 };

describe('resolveJobTypeSettings', () => {
  it("gives the platform's core defaults, the platform's maxReceiveCount, then the type's own defaults", () => {
    const t = resolveJobTypeSettings(nodeWith(), thumbnail, platform);
    expect(t).toEqual({
      ...DEFAULT_CORE_SETTINGS,
      maxReceiveCount: 5,
      ...thumbnail.definition.core,
      ...thumbnail.definition.settings.defaults,
      // Derived from the type's maxConcurrency (20), not the platform's default one.
      highMaxConcurrency: 40,
    });
    // The type's own core defaults win over the platform's.
    expect(t.timeoutSeconds).toBe(30);
    expect(t.memoryMb).toBe(1536);
    expect(t.maxConcurrency).toBe(20);
    // What the platform has and the type does not set stays the platform's.
    expect(t.retryBaseSeconds).toBe(DEFAULT_CORE_SETTINGS.retryBaseSeconds);
    expect(t.maxQueuedSeconds).toBe(DEFAULT_CORE_SETTINGS.maxQueuedSeconds);

    const r = resolveJobTypeSettings(nodeWith(), report, platform);
    expect(r).toMatchObject({ timeoutSeconds: 600, memoryMb: 1024, batchSize: 1, maxConcurrency: 2, maxReceiveCount: 5, maxDays: 366 });
    // What the stack resolved is what a worker parses back from its environment.
    expect(parseSettings(report.definition, JSON.parse(JSON.stringify(r)))).toEqual(r);
  });

  it("gives the high lane twice the normal lane's concurrency unless set, and checks it like the others", () => {
    expect(resolveJobTypeSettings(nodeWith(), report, platform).highMaxConcurrency).toBe(4);
    // It follows the normal lane's setting from context...
    expect(resolveJobTypeSettings(nodeWith({ 'jobs.report.maxConcurrency': '3' }), report, platform).highMaxConcurrency).toBe(6);
    expect(resolveJobTypeSettings(nodeWith({ reportMaxConcurrency: '700' }), report, platform).highMaxConcurrency).toBe(1000);
    // ...unless it is set itself.
    const set = resolveJobTypeSettings(nodeWith({ 'jobs.report.highMaxConcurrency': '9' }), report, platform);
    expect(set).toMatchObject({ maxConcurrency: 2, highMaxConcurrency: 9 });
    expect(parseSettings(report.definition, JSON.parse(JSON.stringify(set)))).toEqual(set);
    expect(() => resolveJobTypeSettings(nodeWith({ 'jobs.report.highMaxConcurrency': '1' }), report, platform)).toThrow(
      /context jobs\.report\.highMaxConcurrency: "1" is not a whole number from 2 to 1000/,
    );
    expect(() => resolveJobTypeSettings(nodeWith({ jobs: { thumbnail: { highMaxConcurrency: 'lots' } } }), thumbnail, platform)).toThrow(/jobs\.thumbnail\.highMaxConcurrency/);
  });

  it('takes -c jobs.<type>.<setting>=value (a string from the command line) as a number', () => {
    const t = resolveJobTypeSettings(nodeWith({ 'jobs.thumbnail.timeoutSeconds': '60', 'jobs.thumbnail.maxPixels': '5000' }), thumbnail, platform);
    expect(t.timeoutSeconds).toBe(60);
    expect(t.maxPixels).toBe(5000);
    // Another type's settings are not touched.
    expect(resolveJobTypeSettings(nodeWith({ 'jobs.thumbnail.timeoutSeconds': '60' }), report, platform).timeoutSeconds).toBe(600);
  });

  it('takes a nested jobs object (cdk.json) too', () => {
    const node = nodeWith({ jobs: { report: { maxDays: 31, memoryMb: 2048 }, thumbnail: { sizes: 'tiny:64' } } });
    expect(resolveJobTypeSettings(node, report, platform)).toMatchObject({ maxDays: 31, memoryMb: 2048 });
    expect(resolveJobTypeSettings(node, thumbnail, platform).sizes).toBe('tiny:64');
  });

  it('keeps the legacy flat aliases (thumbnailTimeoutSeconds, reportMaxDays); the jobs.<type> form wins over them', () => {
    expect(resolveJobTypeSettings(nodeWith({ thumbnailTimeoutSeconds: '45' }), thumbnail, platform).timeoutSeconds).toBe(45);
    expect(resolveJobTypeSettings(nodeWith({ reportMaxDays: 90 }), report, platform).maxDays).toBe(90);
    const both = nodeWith({ thumbnailTimeoutSeconds: '45', 'jobs.thumbnail.timeoutSeconds': '50' });
    expect(resolveJobTypeSettings(both, thumbnail, platform).timeoutSeconds).toBe(50);
  });

  it('applies overrides last', () => {
    const node = nodeWith({ 'jobs.report.maxDays': '30' });
    expect(resolveJobTypeSettings(node, report, platform, { maxDays: 7, timeoutSeconds: 120 })).toMatchObject({ maxDays: 7, timeoutSeconds: 120 });
  });

  it('refuses an unknown setting, naming the settings the type has', () => {
    const attempt = () => resolveJobTypeSettings(nodeWith({ 'jobs.thumbnail.colour': 'red' }), thumbnail, platform);
    expect(attempt).toThrow(/context jobs\.thumbnail\.colour: thumbnail has no setting colour/);
    expect(attempt).toThrow(/it has timeoutSeconds, memoryMb, .*maxQueuedSeconds, sizes, maxPixels, maxUploadBytes, directUploadMaxBytes/);
    expect(() => resolveJobTypeSettings(nodeWith({ jobs: { report: { maxDay: 3 } } }), report, platform)).toThrow(/report has no setting maxDay; it has .*maxDays/);
    expect(() => resolveJobTypeSettings(nodeWith(), report, platform, { nope: 1 })).toThrow(/no setting nope/);
  });

  it.each([
    [{ 'jobs.thumbnail.timeoutSeconds': '901' }, /^context jobs\.thumbnail\.timeoutSeconds: "901" is not a whole number from 1 to 900$/],
    [{ 'jobs.thumbnail.timeoutSeconds': '0' }, /^context jobs\.thumbnail\.timeoutSeconds: "0" is not a whole number from 1 to 900$/],
    [{ 'jobs.thumbnail.memoryMb': '1.5' }, /^context jobs\.thumbnail\.memoryMb: "1\.5" is not a whole number from 128 to 10240$/],
    [{ 'jobs.thumbnail.batchSize': 'lots' }, /^context jobs\.thumbnail\.batchSize: "lots" is not a whole number/],
    [{ thumbnailTimeoutSeconds: '1000' }, /^context thumbnailTimeoutSeconds: "1000" is not a whole number from 1 to 900$/],
    [{ jobs: { thumbnail: { maxConcurrency: 1 } } }, /^context jobs\.thumbnail\.maxConcurrency: 1 is not a whole number from 2 to 1000$/],
    [{ 'jobs.thumbnail.maxPixels': '0' }, /^context jobs\.thumbnail\.maxPixels: "0" must be at least 1$/],
    [{ 'jobs.thumbnail.sizes': 'big' }, /^context jobs\.thumbnail\.sizes: "big" expected name:px/],
    [{ 'jobs.thumbnail.retryBaseSeconds': '60', 'jobs.thumbnail.retryMaxSeconds': '10' }, /^context jobs\.thumbnail\.retryMaxSeconds: must be at least retryBaseSeconds \(60\)$/],
  ])('refuses %j out of bounds with an error naming the context key', (context, message) => {
    expect(() => resolveJobTypeSettings(nodeWith(context), thumbnail, platform)).toThrow(message);
  });

  it("names the type's own setting by its key (report maxDays)", () => {
    expect(() => resolveJobTypeSettings(nodeWith({ 'jobs.report.maxDays': '0' }), report, platform)).toThrow(/^context jobs\.report\.maxDays: "0" must be at least 1$/);
    expect(() => resolveJobTypeSettings(nodeWith({ reportMaxDays: '9999' }), report, platform)).toThrow(/^context reportMaxDays: "9999" must be at most 3660$/);
  });
});
