import { describe, expect, it } from 'vitest';
import { builtInJobTypes } from '../../job-types';
import { ReportInput } from '../../job-types/report/definition';
import { UploadRequest } from '../../job-types/thumbnail/definition';
import { SubmitOptions } from '../../lambda/shared/schemas';
import { jsonSchema, openApiDocument, submitModelSchema } from '../../lib/openapi';

type Json = Record<string, any>;
const definitions = builtInJobTypes.map((p) => p.definition);
const doc = openApiDocument(definitions) as Json;

/** Every value under `node` whose key is `key`, however deep. */
function valuesOf(node: unknown, key: string): unknown[] {
  if (Array.isArray(node)) return node.flatMap((n) => valuesOf(n, key));
  if (typeof node !== 'object' || node === null) return [];
  return Object.entries(node).flatMap(([k, v]) => [...(k === key ? [v] : []), ...valuesOf(v, key)]);
}

describe('openApiDocument (built-in types)', () => {
  it("has the platform's paths and every type's own", () => {
    expect(doc.openapi).toMatch(/^3\.0\./);
    expect(Object.keys(doc.paths).sort()).toEqual(['/', '/console/{file}', '/jobs', '/jobs/{jobId}', '/openapi.json', '/queues', '/reports', '/uploads']);
    expect(Object.keys(doc.paths['/jobs']).sort()).toEqual(['get', 'post']);
    expect(doc.paths['/jobs/{jobId}'].get.operationId).toBe('GetJob');
    expect(doc.paths['/uploads'].post).toMatchObject({ operationId: 'CreateUpload', tags: ['thumbnail'] });
    expect(doc.paths['/reports'].post).toMatchObject({ operationId: 'CreateReport', tags: ['report'] });
    // The document and the console's static files need no key; everything else does.
    expect(doc.paths['/openapi.json'].get.security).toEqual([]);
    expect(doc.paths['/'].get.security).toEqual([]);
    expect(doc.paths['/console/{file}'].get.security).toEqual([]);
    expect(doc.paths['/queues'].get.security).toBeUndefined();
    expect(doc.security).toEqual([{ apiKey: [] }]);
  });

  it('describes POST /jobs with the input schema of each JSON-input type (the report), not the file-input ones', () => {
    const variants = doc.paths['/jobs'].post.requestBody.content['application/json'].schema.oneOf as Json[];
    expect(variants).toHaveLength(1);
    const [reportVariant] = variants;
    expect(reportVariant).toMatchObject({ type: 'object', required: ['type', 'input'], additionalProperties: false });
    expect(reportVariant.properties.type).toEqual({ type: 'string', enum: ['report'] });
    const input = reportVariant.properties.input;
    expect(input).toEqual(jsonSchema(ReportInput, 'openapi-3.0'));
    expect(input).toMatchObject({ type: 'object', required: ['from', 'to'], additionalProperties: false });
    expect(Object.keys(input.properties).sort()).toEqual(['formats', 'from', 'to']);
    expect(input.properties.formats.items.enum).toEqual(['csv', 'pdf']);
    expect(input.properties.from.pattern).toBeDefined();
  });

  it("gives each type's routes their body schemas and binary media types", () => {
    const uploads = doc.paths['/uploads'].post.requestBody.content;
    const options = jsonSchema(SubmitOptions, 'openapi-3.0').properties as Json;
    // Each route's own fields plus the submit options it takes: uploads only priority (the upload is the trigger).
    const upload = jsonSchema(UploadRequest, 'openapi-3.0');
    expect(uploads['application/json'].schema).toEqual({ ...upload, properties: { ...(upload.properties as Json), priority: options.priority } });
    expect(uploads['image/*']).toEqual({ schema: { type: 'string', format: 'binary' } });
    const report = jsonSchema(ReportInput, 'openapi-3.0');
    expect(doc.paths['/reports'].post.requestBody.content['application/json'].schema).toEqual({ ...report, properties: { ...(report.properties as Json), ...options } });
  });

  it('documents the submit options (priority, delaySeconds) and the job fields they give (priority, runAfter)', () => {
    const [reportVariant] = doc.paths['/jobs'].post.requestBody.content['application/json'].schema.oneOf as Json[];
    expect(reportVariant.properties.priority).toEqual({ type: 'string', enum: ['high', 'normal'] });
    expect(reportVariant.properties.delaySeconds).toMatchObject({ type: 'integer', minimum: 0, maximum: 900 });
    const job = doc.components.schemas.Job;
    expect(job.required).toContain('priority');
    expect(job.properties.priority.enum).toEqual(['high', 'normal']);
    expect(job.properties.runAfter).toMatchObject({ type: 'string', format: 'date-time' });
    expect(job.properties.startedAt).toMatchObject({ type: 'string', format: 'date-time' });
  });

  it('names the registered types wherever a type is an enum', () => {
    const typeParam = (doc.paths['/jobs'].get.parameters as Json[]).find((p) => p.name === 'type');
    expect(typeParam?.schema.enum).toEqual(['thumbnail', 'report']);
    expect(doc.components.schemas.Job.properties.type.enum).toEqual(['thumbnail', 'report']);
    expect(doc.components.schemas.Job.required).toEqual(expect.arrayContaining(['jobId', 'type', 'status', 'input', 'outputs']));
  });

  it('is plain JSON (what GET /openapi.json serves)', () => {
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });
});

describe('jsonSchema draft-04 (API Gateway models)', () => {
  const bodies = definitions.flatMap((d) => (d.routes ?? []).filter((r) => r.body).map((r) => [`${d.name} ${r.method} ${r.path}`, r.body!] as const));

  it('covers a body of each built-in type', () => {
    expect(bodies.map(([name]) => name)).toEqual(['thumbnail POST /uploads', 'report POST /reports']);
  });

  it.each(bodies)('%s: no $schema key, and only the boolean exclusiveMinimum of draft-04', (_name, body) => {
    const schema = jsonSchema(body, 'draft-04');
    expect(valuesOf(schema, '$schema')).toEqual([]);
    for (const v of valuesOf(schema, 'exclusiveMinimum')) expect(typeof v).toBe('boolean');
    for (const v of valuesOf(schema, 'exclusiveMaximum')) expect(typeof v).toBe('boolean');
    expect(schema.additionalProperties).toBe(false);
  });

  it("writes the upload's positive size as minimum 0 with exclusiveMinimum true", () => {
    const schema = jsonSchema(UploadRequest, 'draft-04') as Json;
    expect(schema.properties.size).toMatchObject({ type: 'number', minimum: 0, exclusiveMinimum: true });
    expect(schema.required).toEqual(['filename', 'contentType', 'size']);
  });

  it('models the POST /jobs envelope alone (each type input is checked by the function)', () => {
    const schema = submitModelSchema() as Json;
    expect(schema).not.toHaveProperty('$schema');
    expect(schema).toMatchObject({ type: 'object', required: ['type', 'input'], additionalProperties: false });
    expect(schema.properties.input.type).toBe('object');
  });
});
