import { describe, expect, it } from 'vitest';
import { compileFilterCriteria, matchesPattern, parsePattern } from '../../local/filter-pattern';

/** Lambda event filtering (FilterCriteria) as the local stream source applies it. */
const record = (eventName: string, status?: string, extra: Record<string, unknown> = {}) => ({
  eventID: 'e1',
  eventName,
  eventVersion: '1.1',
  eventSource: 'aws:dynamodb',
  awsRegion: 'us-east-1',
  dynamodb: {
    Keys: { jobId: { S: 'job-1' } },
    NewImage: { jobId: { S: 'job-1' }, attempts: { N: '2' }, ...(status ? { status: { S: status } } : {}), ...extra },
    SequenceNumber: '100',
    SizeBytes: 40,
    StreamViewType: 'NEW_AND_OLD_IMAGES',
  },
});

const match = (pattern: unknown, event: unknown) => matchesPattern(parsePattern(JSON.stringify(pattern)), event);

describe('filter patterns', () => {
  it('matches exact values in nested objects (the notifier pattern)', () => {
    const terminal = { eventName: ['MODIFY', 'INSERT'], dynamodb: { NewImage: { status: { S: ['succeeded', 'failed', 'cancelled'] } } } };
    expect(match(terminal, record('MODIFY', 'succeeded'))).toBe(true);
    expect(match(terminal, record('INSERT', 'cancelled'))).toBe(true);
    expect(match(terminal, record('MODIFY', 'running'))).toBe(false);
    expect(match(terminal, record('REMOVE', 'succeeded'))).toBe(false);
    expect(match(terminal, record('MODIFY'))).toBe(false); // no status at all
    // Types are not coerced: the string "2" is not the number 2.
    expect(match({ dynamodb: { NewImage: { attempts: { N: [2] } } } }, record('MODIFY'))).toBe(false);
    expect(match({ dynamodb: { NewImage: { attempts: { N: ['2'] } } } }, record('MODIFY'))).toBe(true);
  });

  it('exists, prefix, suffix, equals-ignore-case', () => {
    const r = record('MODIFY', 'failed', { error: { S: 'Timeout: took too long' } });
    expect(match({ dynamodb: { NewImage: { error: { S: [{ exists: true }] } } } }, r)).toBe(true);
    expect(match({ dynamodb: { NewImage: { error: { S: [{ exists: false }] } } } }, r)).toBe(false);
    expect(match({ dynamodb: { NewImage: { error: { S: [{ exists: false }] } } } }, record('MODIFY', 'succeeded'))).toBe(true);
    expect(match({ dynamodb: { OldImage: [{ exists: false }] } }, r)).toBe(true); // a missing parent counts as missing
    // exists applies to leaf values only.
    expect(match({ dynamodb: { NewImage: { error: [{ exists: true }] } } }, r)).toBe(false);
    expect(match({ dynamodb: { NewImage: { error: { S: [{ prefix: 'Timeout:' }] } } } }, r)).toBe(true);
    expect(match({ dynamodb: { NewImage: { error: { S: [{ prefix: 'timeout:' }] } } } }, r)).toBe(false);
    expect(match({ dynamodb: { NewImage: { error: { S: [{ prefix: { 'equals-ignore-case': 'timeout:' } }] } } } }, r)).toBe(true);
    expect(match({ dynamodb: { NewImage: { error: { S: [{ suffix: 'too long' }] } } } }, r)).toBe(true);
    expect(match({ dynamodb: { NewImage: { status: { S: [{ 'equals-ignore-case': 'FAILED' }] } } } }, r)).toBe(true);
  });

  it('anything-but: values, lists and prefixes; never matches a missing field', () => {
    const r = record('MODIFY', 'running');
    expect(match({ dynamodb: { NewImage: { status: { S: [{ 'anything-but': 'queued' }] } } } }, r)).toBe(true);
    expect(match({ dynamodb: { NewImage: { status: { S: [{ 'anything-but': ['queued', 'running'] }] } } } }, r)).toBe(false);
    expect(match({ dynamodb: { NewImage: { status: { S: [{ 'anything-but': { prefix: 'run' } }] } } } }, r)).toBe(false);
    expect(match({ dynamodb: { NewImage: { status: { S: [{ 'anything-but': { prefix: 'que' } }] } } } }, r)).toBe(true);
    expect(match({ eventName: [{ 'anything-but': ['REMOVE'] }] }, r)).toBe(true);
    expect(match({ dynamodb: { NewImage: { nope: { S: [{ 'anything-but': 'x' }] } } } }, r)).toBe(false);
  });

  it('numeric ranges, null, booleans, arrays in the event and $or', () => {
    const event = { size: 10, tags: ['a', 'b'], flag: false, gone: null, items: [{ kind: 'x' }, { kind: 'y' }] };
    expect(match({ size: [{ numeric: ['>', 0, '<=', 10] }] }, event)).toBe(true);
    expect(match({ size: [{ numeric: ['>', 10] }] }, event)).toBe(false);
    expect(match({ tags: ['b'] }, event)).toBe(true); // any element of an array
    expect(match({ tags: ['c'] }, event)).toBe(false);
    expect(match({ flag: [false] }, event)).toBe(true);
    expect(match({ gone: [null] }, event)).toBe(true);
    expect(match({ items: { kind: ['y'] } }, event)).toBe(true);
    expect(match({ $or: [{ size: [1] }, { tags: ['a'] }] }, event)).toBe(true);
    expect(match({ $or: [{ size: [1] }, { tags: ['z'] }] }, event)).toBe(false);
  });

  it('FilterCriteria: no filters pass everything; several filters are OR-ed', () => {
    expect(compileFilterCriteria(undefined)(record('REMOVE'))).toBe(true);
    expect(compileFilterCriteria([])(record('REMOVE'))).toBe(true);
    const either = compileFilterCriteria(['{"eventName":["INSERT"]}', '{"dynamodb":{"NewImage":{"status":{"S":["failed"]}}}}']);
    expect(either(record('INSERT', 'queued'))).toBe(true);
    expect(either(record('MODIFY', 'failed'))).toBe(true);
    expect(either(record('MODIFY', 'succeeded'))).toBe(false);
  });

  it('rejects what it does not implement or what is not a pattern', () => {
    expect(() => parsePattern('not json')).toThrow(/not JSON/);
    expect(() => parsePattern('["INSERT"]')).toThrow(/not an object/);
    expect(() => parsePattern('{"eventName":"INSERT"}')).toThrow(/array of matchers/);
    expect(() => parsePattern('{"eventName":[{"wildcard":"IN*"}]}')).toThrow(/unsupported matcher/);
    expect(() => parsePattern('{"size":[{"numeric":[">"]}]}')).toThrow(/unsupported matcher/);
    expect(() => compileFilterCriteria(['{"eventName":["INSERT"]}', '{'])).toThrow(/not JSON/);
  });
});
