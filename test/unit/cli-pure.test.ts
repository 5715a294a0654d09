import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDay, parseFormats, reportFileName } from '../../cli/commands/report';
import { jobStatusText, summarizeOutputs } from '../../cli/commands/upload';
import { renderBar } from '../../cli/progress';
import { contentTypeFor } from '../../cli/content-type';
import { jobIdsFromDeadLetter, parseTypeName, queueOutputs, typesFromOutputs } from '../../cli/dead-letters';
import { expandInputs } from '../../cli/files';
import { formatBytes, formatDuration, formatTable, formatTime, isInteractive, truncate, visibleWidth } from '../../cli/output';
import { isUnsupportedOperation, queueNameFromUrl, sendableAttributes } from '../../cli/sqs';
import { describeStorageError } from '../../cli/transfer';

describe('content types from extensions', () => {
  it.each([
    ['a.jpg', 'image/jpeg'],
    ['dir/b.JPEG', 'image/jpeg'],
    ['c.png', 'image/png'],
    ['d.webp', 'image/webp'],
    ['e.gif', 'image/gif'],
    ['f.tif', 'image/tiff'],
    ['g.TIFF', 'image/tiff'],
    ['h.avif', 'image/avif'],
    ['notes.txt', 'application/octet-stream'],
    ['noext', 'application/octet-stream'],
    ['.jpg', 'application/octet-stream'], // a dot file, not an extension
  ])('%s -> %s', (file, type) => expect(contentTypeFor(file)).toBe(type));
});

const JOB = '0b7a3c2e-1f4d-4e5a-9b8c-7d6e5f4a3b2c';
const s3Event = (key: string, eventName = 'ObjectCreated:Put') =>
  JSON.stringify({ Records: [{ eventName, s3: { bucket: { name: 'raw' }, object: { key, size: 10, eTag: 'abc' } } }] });

describe('dead letters -> job ids (whatever the queue)', () => {
  it('an upload: the S3 event key uploads/{jobId}/{filename}', () => {
    expect(jobIdsFromDeadLetter(s3Event(`uploads/${JOB}/my+photo.jpg`))).toEqual({ jobIds: [JOB], kind: 's3-event' });
  });

  it('an upload: several records, duplicates once', () => {
    const other = '11111111-2222-4333-8444-555555555555';
    const body = JSON.stringify({
      Records: [JOB, other, JOB].map((id) => ({ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'raw' }, object: { key: `uploads/${id}/a.png` } } })),
    });
    expect(jobIdsFromDeadLetter(body).jobIds).toEqual([JOB, other]);
  });

  it("an upload: an object another tool put gets the worker's stable id", () => {
    const r = jobIdsFromDeadLetter(s3Event('uploads/holiday.jpg'));
    expect(r.kind).toBe('s3-event');
    expect(r.jobIds[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(jobIdsFromDeadLetter(s3Event('uploads/holiday.jpg')).jobIds).toEqual(r.jobIds);
  });

  it('poison messages are unrecognized, with the reason', () => {
    expect(jobIdsFromDeadLetter(JSON.stringify({ Records: 'not a list' }))).toMatchObject({ jobIds: [], kind: 'unrecognized', problem: expect.stringMatching(/not an S3 event/) });
    expect(jobIdsFromDeadLetter('{"not":"an s3 event"}')).toMatchObject({ jobIds: [], kind: 'unrecognized', problem: 'message body is not an S3 event notification, nor a job message { jobId, type }' });
    expect(jobIdsFromDeadLetter('plain text')).toMatchObject({ kind: 'unrecognized', problem: 'message body is not JSON' });
    expect(jobIdsFromDeadLetter(JSON.stringify({ Event: 's3:TestEvent' }))).toMatchObject({ jobIds: [], kind: 's3-test-event' });
    expect(jobIdsFromDeadLetter(s3Event(`raw/${JOB}/a.jpg`)).kind).toBe('s3-test-event');
  });

  it("the platform's job message { jobId, type } (and the first API's { jobId, params })", () => {
    expect(jobIdsFromDeadLetter(JSON.stringify({ jobId: JOB, type: 'report' }))).toEqual({ jobIds: [JOB], kind: 'job-message' });
    expect(jobIdsFromDeadLetter(JSON.stringify({ jobId: JOB, params: { from: '2025-01-01', to: '2025-01-02', formats: ['csv'] } }))).toEqual({ jobIds: [JOB], kind: 'job-message' });
    expect(jobIdsFromDeadLetter(JSON.stringify({ jobId: 'nope' }))).toMatchObject({ jobIds: [], kind: 'unrecognized', problem: 'message body is not an S3 event notification, nor a job message { jobId, type }' });
    expect(jobIdsFromDeadLetter('null')).toMatchObject({ jobIds: [], kind: 'unrecognized' });
    expect(jobIdsFromDeadLetter('{')).toMatchObject({ kind: 'unrecognized', problem: 'message body is not JSON' });
  });
});

describe('job types of the deployed stack', () => {
  it('reads the JobTypes output', () => {
    expect(typesFromOutputs({ JobTypes: 'thumbnail, report,send-email' })).toEqual(['thumbnail', 'report', 'send-email']);
    expect(typesFromOutputs({ JobTypes: '' })).toEqual([]);
    expect(typesFromOutputs({})).toEqual([]);
  });

  it('takes a type name or its plural, and refuses others naming the deployed types', () => {
    const types = ['thumbnail', 'report'];
    expect(parseTypeName('report', types)).toBe('report');
    expect(parseTypeName('thumbnails', types)).toBe('thumbnail');
    expect(() => parseTypeName('videos', types)).toThrow(/unknown job type "videos": the stack runs thumbnail, report/);
    expect(() => parseTypeName('report', [])).toThrow(/the stack runs no types/);
  });

  it("names each type's queue outputs", () => {
    expect(queueOutputs('thumbnail')).toEqual({ queue: 'ThumbnailQueueUrl', high: 'ThumbnailHighQueueUrl', dlq: 'ThumbnailDlqUrl' });
    expect(queueOutputs('send-email')).toEqual({ queue: 'SendEmailQueueUrl', high: 'SendEmailHighQueueUrl', dlq: 'SendEmailDlqUrl' });
  });
});

describe('tables and numbers', () => {
  it('aligns columns, right-aligns numbers, trims trailing spaces', () => {
    const t = formatTable(
      [{ header: 'QUEUE' }, { header: 'VISIBLE', align: 'right' }, { header: 'NOTE' }],
      [
        ['thumbnails', '3', ''],
        ['reports-dlq', '120', 'x'],
      ],
    );
    expect(t.split('\n')).toEqual(['QUEUE        VISIBLE  NOTE', 'thumbnails         3', 'reports-dlq      120  x']);
  });

  it('ignores colour codes when measuring, truncates long plain cells, flattens newlines', () => {
    const red = '\u001b[31mfailed\u001b[39m';
    expect(visibleWidth(red)).toBe(6);
    const t = formatTable([{ header: 'S' }, { header: 'D', maxWidth: 5 }], [[red, 'abcdefgh'], ['ok', 'a\nb']]).split('\n');
    expect(t[1]).toBe(`${red}  abcd…`);
    expect(t[2]).toBe('ok      a b');
  });

  it('truncate keeps code points whole', () => {
    expect(truncate('héllo wörld', 5)).toBe('héll…');
    expect(truncate('📷📷📷', 2)).toBe('📷…');
    expect(truncate('abc', 3)).toBe('abc');
  });

  it('formats bytes, durations and times', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(25 * 1024 * 1024)).toBe('25 MiB');
    expect(formatBytes(undefined)).toBe('-');
    expect(formatDuration(null)).toBe('n/a');
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(200)).toBe('3m 20s');
    expect(formatDuration(7500)).toBe('2h 5m');
    expect(formatDuration(90_000)).toBe('1d 1h');
    expect(formatTime('2025-03-04T05:06:07.890Z')).toBe('2025-03-04 05:06:07Z');
    expect(formatTime(undefined)).toBe('-');
  });

  it('bars and colours only on a terminal without NO_COLOR', () => {
    const tty = { isTTY: true, write: () => true };
    const pipe = { isTTY: false, write: () => true };
    expect(isInteractive({ stdout: tty, stderr: tty, env: {} })).toBe(true);
    expect(isInteractive({ stdout: pipe, stderr: tty, env: {} })).toBe(false);
    expect(isInteractive({ stdout: tty, stderr: pipe, env: {} })).toBe(false);
    expect(isInteractive({ stdout: tty, stderr: tty, env: { NO_COLOR: '1' } })).toBe(false);
    expect(isInteractive({ stdout: tty, stderr: tty, env: { TERM: 'dumb' } })).toBe(false);
  });
});

describe('report arguments', () => {
  const now = new Date('2025-06-15T23:30:00Z');
  it('dates', () => {
    expect(parseDay('2025-01-31', now)).toBe('2025-01-31');
    expect(parseDay('today', now)).toBe('2025-06-15');
    expect(parseDay('Yesterday', now)).toBe('2025-06-14');
    expect(() => parseDay('31/01/2025', now)).toThrow(/not a date/);
  });
  it('formats', () => {
    expect(parseFormats(undefined)).toBeUndefined();
    expect(parseFormats('csv')).toEqual(['csv']);
    expect(parseFormats(' CSV , pdf,csv')).toEqual(['csv', 'pdf']);
    expect(() => parseFormats('csv,xlsx')).toThrow(/not xlsx/);
    expect(() => parseFormats(',')).toThrow(/--format/);
  });
  it('file names', () => expect(reportFileName('2025-01-01', '2025-01-31', 'pdf')).toBe('report-2025-01-01-to-2025-01-31.pdf'));
});

describe('SQS helpers', () => {
  it('queue names from URLs', () => {
    expect(queueNameFromUrl('https://sqs.eu-west-1.amazonaws.com/123456789012/Offload-Q')).toBe('Offload-Q');
    expect(queueNameFromUrl('http://localhost:5000/123456789012/q-dlq/')).toBe('q-dlq');
  });

  it('received attributes become sendable ones', () => {
    expect(sendableAttributes(undefined)).toBeUndefined();
    expect(sendableAttributes({})).toBeUndefined();
    expect(
      sendableAttributes({
        a: { DataType: 'String', StringValue: 'x', StringListValues: [] },
        b: { DataType: 'Binary', BinaryValue: new Uint8Array([1]) },
        c: { DataType: 'String' },
      }),
    ).toEqual({ a: { DataType: 'String', StringValue: 'x' }, b: { DataType: 'Binary', BinaryValue: new Uint8Array([1]) } });
  });

  it('tells an unimplemented StartMessageMoveTask from a real failure', () => {
    // moto: an HTML 500 page the SDK cannot parse
    const moto = Object.assign(new SyntaxError('Unexpected token \'<\', "<!doctype "... is not valid JSON\n  Deserialization error: ...'), {
      $metadata: { httpStatusCode: 500 },
    });
    expect(isUnsupportedOperation(moto)).toBe(true);
    expect(isUnsupportedOperation(Object.assign(new Error('x'), { name: 'UnsupportedOperation' }))).toBe(true);
    expect(isUnsupportedOperation(Object.assign(new Error('The action StartMessageMoveTask is not valid'), { name: 'InvalidAction' }))).toBe(true);
    expect(isUnsupportedOperation(Object.assign(new Error('not yet implemented'), { $metadata: { httpStatusCode: 500 } }))).toBe(true);
    expect(isUnsupportedOperation(Object.assign(new Error('nope'), { $metadata: { httpStatusCode: 501 } }))).toBe(true);
    expect(isUnsupportedOperation(Object.assign(new Error('Access denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }))).toBe(false);
    expect(
      isUnsupportedOperation(Object.assign(new Error('Source queue must be configured as a Dead Letter Queue.'), { name: 'InvalidParameterValueException', $metadata: { httpStatusCode: 400 } })),
    ).toBe(false);
    expect(isUnsupportedOperation(Object.assign(new Error('We encountered an internal error'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } }))).toBe(false);
  });

  it('storage errors', () => {
    expect(describeStorageError(403, '<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature...</Message></Error>')).toBe(
      '403 SignatureDoesNotMatch: The request signature...',
    );
    expect(describeStorageError(502, '')).toBe('HTTP 502');
  });
});

describe('file arguments', () => {
  it('expands globs, keeps literal names, reports what matches nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offload-cli-files-'));
    try {
      for (const f of ['a.jpg', 'b.png', 'sub/c.jpg', 'weird[1].jpg', '.hidden.jpg']) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.writeFileSync(path.join(dir, f), 'x');
      }
      expect(expandInputs(['*.jpg'], dir)).toEqual({ files: ['a.jpg', 'weird[1].jpg'], errors: [] });
      expect(expandInputs(['**/*.jpg', 'a.jpg'], dir).files).toEqual(['a.jpg', 'sub/c.jpg', 'weird[1].jpg']);
      expect(expandInputs(['.*.jpg'], dir).files).toEqual(['.hidden.jpg']);
      expect(expandInputs(['weird[1].jpg'], dir).files).toEqual(['weird[1].jpg']);
      expect(expandInputs([path.join(dir, 'b.png')], '/').files).toEqual([path.join(dir, 'b.png')]);
      expect(expandInputs(['missing.jpg', '*.gif', 'sub', 'b.png'], dir)).toEqual({
        files: ['b.png'],
        errors: ['missing.jpg: no such file', '*.gif: no files match', `sub: is a directory (use a glob such as "${path.join('sub', '*.jpg')}")`],
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('progress lines and job summaries', () => {
  it('bars fit the terminal and carry no colour codes', () => {
    const line = renderBar(80, 10, { value: 512, total: 1024 }, { name: 'photo.jpg', unit: 'bytes', status: 'uploading' });
    expect(line).toBe('photo.jpg  ████████░░░░░░░  50%  512 B / 1.0 KiB     uploading');
    expect(line).not.toMatch(/\u001b/);
    const narrow = renderBar(50, 10, { value: 1, total: 2 }, { name: 'a-very-long-file-name.jpg', unit: 'bytes', status: 'failed: unsupported_format' });
    expect(visibleWidth(narrow)).toBeLessThanOrEqual(49);
    expect(narrow.startsWith('a-very-lo…')).toBe(true);
    expect(renderBar(80, 6, { value: 42, total: 0 }, { name: 'report', unit: 'rows', status: 'processing (42)' })).toMatch(/^report\s+42 rows\s+processing \(42\)$/);
  });

  it('job status texts and output summaries', () => {
    const base = { jobId: 'j', type: 'thumbnail' as const, createdAt: '', updatedAt: '', attempts: 1, priority: 'normal' as const, input: {}, outputs: [] };
    expect(jobStatusText({ ...base, status: 'queued' })).toBe('queued');
    expect(jobStatusText({ ...base, status: 'processing', attempts: 2 })).toBe('processing (attempt 2)');
    expect(jobStatusText({ ...base, status: 'processing', progress: { done: 5, total: 9 } })).toBe('processing (5/9)');
    expect(jobStatusText({ ...base, status: 'failed', error: { code: 'corrupt_image', message: 'x' } })).toBe('failed: corrupt_image');
    const o = (name: string, format: string, width: number) => ({ name, format, width, height: width / 2, bytes: 1, contentType: '', url: '' });
    expect(summarizeOutputs([o('small', 'jpeg', 160), o('small', 'webp', 160), o('large', 'jpeg', 1280), o('large', 'webp', 1280)])).toBe(
      '4 outputs (jpeg, webp): small 160x80, large 1280x640',
    );
    expect(summarizeOutputs([])).toBe('no outputs');
  });
});
