import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  CSV_COLUMNS,
  ReportAggregator,
  buildReport,
  csvCell,
  csvHeaderLine,
  csvLine,
  formatBytes,
  formatInt,
  nearestRank,
  renderPdf,
  utcDayOf,
  type ReportSummary,
  type UploadRecord,
} from '../../job-types/report/core';
import { chartBuckets, toWinAnsi } from '../../job-types/report/pdf';

// ---------------------------------------------------------------- helpers

/** cp1252 bytes 0x80..0x9F that differ from latin1 (only those our PDFs can contain matter). */
const CP1252: Record<number, string> = { 0x85: '\u2026', 0x91: '\u2018', 0x92: '\u2019', 0x93: '\u201c', 0x94: '\u201d', 0x96: '\u2013', 0x97: '\u2014' };

/**
 * The page text of an UNCOMPRESSED pdfkit PDF (render with compress: false): pdfkit writes
 * standard-14-font text as `[<hex> kerning <hex> ...] TJ`, hex of WinAnsi codes. Each TJ is one
 * line of text; kerning numbers are dropped (pdfkit writes spaces as real space glyphs).
 */
function pdfText(pdf: Buffer): string {
  const raw = pdf.toString('latin1');
  const lines: string[] = [];
  for (const m of raw.matchAll(/\[([^\]]*)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj/g)) {
    const body = m[1] ?? `<${m[2]}>`;
    let line = '';
    for (const h of body.matchAll(/<([0-9a-fA-F]*)>/g)) {
      for (let i = 0; i + 1 < h[1].length; i += 2) {
        const code = parseInt(h[1].slice(i, i + 2), 16);
        line += CP1252[code] ?? String.fromCharCode(code);
      }
    }
    lines.push(line);
  }
  return lines.join('\n');
}

function pageCount(pdf: Buffer): number {
  return (pdf.toString('latin1').match(/\/Type \/Page\b/g) ?? []).length;
}

function expectValidPdf(pdf: Buffer | undefined): Buffer {
  expect(pdf).toBeInstanceOf(Buffer);
  expect(pdf!.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  expect(pdf!.toString('latin1').trimEnd().endsWith('%%EOF')).toBe(true);
  return pdf!;
}

/** Minimal RFC 4180 parser (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i++;
      } else {
        cell += c;
        i++;
      }
    } else if (c === '"' && cell === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      row.push(cell);
      cell = '';
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i += 2;
    } else {
      if (c === '\r' || c === '\n' || c === '"') throw new Error(`bare ${JSON.stringify(c)} at ${i}`);
      cell += c;
      i++;
    }
  }
  if (quoted) throw new Error('unterminated quote');
  if (cell !== '' || row.length > 0) throw new Error('last record not CRLF-terminated');
  return rows;
}

/** A Writable that keeps every chunk. */
function sink(): { stream: Writable; bytes: () => Buffer; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks), text: () => Buffer.concat(chunks).toString('utf8') };
}

function rec(over: Partial<UploadRecord> = {}): UploadRecord {
  return {
    jobId: 'job-1',
    filename: 'photo.jpg',
    contentType: 'image/jpeg',
    bytes: 1000,
    width: 640,
    height: 480,
    status: 'succeeded',
    createdAt: '2024-01-15T10:00:00.000Z',
    completedAt: '2024-01-15T10:00:01.500Z',
    processingMs: 1500,
    outputBytes: 300,
    outputFormats: ['jpeg', 'webp'],
    ...over,
  };
}

function* many(n: number, from = '2024-01-01', days = 31): Generator<UploadRecord> {
  const t0 = Date.parse(from + 'T00:00:00Z');
  for (let i = 0; i < n; i++) {
    yield rec({ jobId: `job-${i}`, filename: `f${i}.jpg`, createdAt: new Date(t0 + Math.floor((i * days * 86_400_000) / n)).toISOString() });
  }
}

async function* asyncOf<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const x of items) {
    await new Promise((r) => setImmediate(r));
    yield x;
  }
}

const GENERATED_AT = new Date('2024-02-01T12:00:00.000Z');

// ---------------------------------------------------------------- CSV encoding

describe('csvCell', () => {
  it('writes plain values as they are and missing values as empty cells', () => {
    expect(csvCell('photo.jpg')).toBe('photo.jpg');
    expect(csvCell(42)).toBe('42');
    expect(csvCell(1.5)).toBe('1.5');
    expect(csvCell(0)).toBe('0');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(null)).toBe('');
    expect(csvCell('')).toBe('');
    expect(csvCell(NaN)).toBe('');
    expect(csvCell(Infinity)).toBe('');
  });

  it('quotes cells holding a comma, a quote, CR or LF (RFC 4180) and doubles inner quotes', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "cheese"')).toBe('"say ""cheese"""');
    expect(csvCell('"')).toBe('""""');
    expect(csvCell('line1\r\nline2')).toBe('"line1\r\nline2"');
    expect(csvCell('line1\nline2')).toBe('"line1\nline2"');
    expect(csvCell('a\rb')).toBe('"a\rb"');
    expect(csvCell("it's; fine")).toBe("it's; fine");
  });

  it.each([
    ['=', '=HYPERLINK("http://x","click")', `"'=HYPERLINK(""http://x"",""click"")"`],
    ['=', '=1+2', "'=1+2"],
    ['+', '+cmd|calc', "'+cmd|calc"],
    ['-', '-2+3', "'-2+3"],
    ['@', '@SUM(A1:A9)', "'@SUM(A1:A9)"],
    ['TAB', '\t=1+2', "'\t=1+2"],
    ['CR', '\r=1+2', `"'\r=1+2"`],
  ])('neutralises a cell starting with %s by prefixing a single quote', (_name, input, expected) => {
    expect(csvCell(input)).toBe(expected);
  });

  it('does not neutralise numbers, nor trigger characters that are not first', () => {
    expect(csvCell(-5)).toBe('-5');
    expect(csvCell(+3)).toBe('3');
    expect(csvCell('a=b')).toBe('a=b');
    expect(csvCell('photo-1.jpg')).toBe('photo-1.jpg');
    expect(csvCell('me@example.com')).toBe('me@example.com');
  });

  it('keeps unicode intact', () => {
    for (const s of ['猫の写真.png', '🐱‍👤 ninja.jpg', 'صورة.jpg', 'cafe\u0301.jpg', 'Ünïcödé.jpg']) expect(csvCell(s)).toBe(s);
  });
});

describe('csvLine / csvHeaderLine', () => {
  it('has exactly the CSV_COLUMNS, in order, CRLF-terminated', () => {
    expect(CSV_COLUMNS).toEqual(['jobId', 'filename', 'contentType', 'bytes', 'width', 'height', 'status', 'errorCode', 'createdAt', 'completedAt', 'processingMs']);
    expect(csvHeaderLine()).toBe('jobId,filename,contentType,bytes,width,height,status,errorCode,createdAt,completedAt,processingMs\r\n');
  });

  it('writes one record per line with empty cells for missing fields', () => {
    expect(csvLine(rec())).toBe('job-1,photo.jpg,image/jpeg,1000,640,480,succeeded,,2024-01-15T10:00:00.000Z,2024-01-15T10:00:01.500Z,1500\r\n');
    expect(
      csvLine({ jobId: 'j2', filename: 'a,b.png', status: 'failed', errorCode: 'corrupt_image', createdAt: '2024-01-15T10:00:00.000Z' }),
    ).toBe('j2,"a,b.png",,,,,failed,corrupt_image,2024-01-15T10:00:00.000Z,,\r\n');
  });
});

// ---------------------------------------------------------------- aggregation

describe('ReportAggregator', () => {
  it('buckets by UTC day: 23:59:59.999Z and 00:00:00Z the next day land on different days', () => {
    const agg = new ReportAggregator('2024-03-01', '2024-03-03');
    agg.add(rec({ createdAt: '2024-03-01T23:59:59.999Z' }));
    agg.add(rec({ createdAt: '2024-03-02T00:00:00.000Z' }));
    agg.add(rec({ createdAt: '2024-03-02T00:00:00Z' }));
    // An offset is converted to UTC: 01:00 at +02:00 is 23:00 the day before.
    agg.add(rec({ createdAt: '2024-03-03T01:00:00+02:00', status: 'failed' }));
    const s = agg.summary();
    expect(s.perDay).toEqual([
      { day: '2024-03-01', uploads: 1, failures: 0 },
      { day: '2024-03-02', uploads: 3, failures: 1 },
      { day: '2024-03-03', uploads: 0, failures: 0 },
    ]);
  });

  it('zero-fills every day of the range, across month and leap-year boundaries', () => {
    const s = new ReportAggregator('2024-02-27', '2024-03-02').summary();
    expect(s.perDay.map((d) => d.day)).toEqual(['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01', '2024-03-02']);
    expect(s.perDay.every((d) => d.uploads === 0 && d.failures === 0)).toBe(true);
    expect(new ReportAggregator('2024-01-01', '2024-12-31').summary().perDay).toHaveLength(366);
    expect(new ReportAggregator('2024-05-05', '2024-05-05').summary().perDay).toEqual([{ day: '2024-05-05', uploads: 0, failures: 0 }]);
  });

  it('totals statuses, bytes, formats, input types and failures', () => {
    const agg = new ReportAggregator('2024-01-01', '2024-01-31');
    agg.add(rec({ bytes: 1000, outputBytes: 300, outputFormats: ['jpeg', 'webp'] }));
    agg.add(rec({ bytes: 2000, outputBytes: 700, outputFormats: ['jpeg', 'jpeg', 'avif'], contentType: 'image/png' }));
    agg.add(rec({ status: 'failed', errorCode: 'corrupt_image', errorMessage: 'bad header', bytes: 50, outputBytes: undefined, outputFormats: undefined, processingMs: 10 }));
    agg.add(rec({ status: 'failed', errorCode: 'corrupt_image', errorMessage: 'second message', outputFormats: [], outputBytes: 0 }));
    agg.add(rec({ status: 'failed', errorCode: undefined, contentType: undefined, bytes: undefined, outputFormats: undefined, outputBytes: undefined }));
    agg.add(rec({ status: 'queued', bytes: undefined, outputBytes: undefined, outputFormats: undefined, processingMs: undefined }));
    agg.add(rec({ status: 'awaiting_upload', bytes: Number.NaN, outputBytes: undefined, outputFormats: undefined, processingMs: undefined }));
    const s = agg.summary();
    expect(s.total).toBe(7);
    expect(s.byStatus).toEqual({ awaiting_upload: 1, queued: 1, processing: 0, succeeded: 2, failed: 3, cancelled: 0 });
    expect(s.bytesIn).toBe(1000 + 2000 + 50 + 1000 + 0);
    expect(s.bytesOut).toBe(300 + 700 + 0); // missing and 0 add nothing
    expect(s.formats).toEqual({ jpeg: 2, avif: 1, webp: 1 }); // jobs per format: the duplicate jpeg counts once
    expect(s.inputTypes).toEqual({ 'image/jpeg': 5, 'image/png': 1, unknown: 1 });
    expect(s.topFailures).toEqual([
      { code: 'corrupt_image', count: 2, example: 'bad header' },
      { code: 'unknown', count: 1 },
    ]);
    expect(s.perDay.find((d) => d.day === '2024-01-15')).toEqual({ day: '2024-01-15', uploads: 7, failures: 3 });
    expect(s.outOfRange).toBe(0);
  });

  it('keeps the top 5 failure codes by count (ties by code)', () => {
    const agg = new ReportAggregator('2024-01-01', '2024-01-31');
    const counts: Record<string, number> = { a: 1, b: 7, c: 3, d: 3, e: 9, f: 2, g: 5 };
    for (const [code, n] of Object.entries(counts)) for (let i = 0; i < n; i++) agg.add(rec({ status: 'failed', errorCode: code }));
    expect(agg.summary().topFailures.map((f) => [f.code, f.count])).toEqual([['e', 9], ['b', 7], ['g', 5], ['c', 3], ['d', 3]]);
  });

  it('counts records outside the range in the totals but in no day', () => {
    const agg = new ReportAggregator('2024-01-10', '2024-01-11');
    agg.add(rec({ createdAt: '2024-01-09T23:59:59.999Z' }));
    agg.add(rec({ createdAt: '2024-01-10T00:00:00.000Z' }));
    agg.add(rec({ createdAt: '2024-01-11T23:59:59.999Z', status: 'failed' }));
    agg.add(rec({ createdAt: '2024-01-12T00:00:00.000Z', status: 'failed' }));
    agg.add(rec({ createdAt: 'not a date' }));
    const s = agg.summary();
    expect(s.total).toBe(5);
    expect(s.byStatus.failed).toBe(2);
    expect(s.outOfRange).toBe(3);
    expect(s.perDay).toEqual([
      { day: '2024-01-10', uploads: 1, failures: 0 },
      { day: '2024-01-11', uploads: 1, failures: 1 },
    ]);
  });

  it('rejects invalid dates and reversed ranges', () => {
    expect(() => new ReportAggregator('2024-01-31', '2024-01-01')).toThrow(RangeError);
    expect(() => new ReportAggregator('2024-02-30', '2024-03-01')).toThrow(RangeError);
    expect(() => new ReportAggregator('2024-1-1', '2024-03-01')).toThrow(RangeError);
    expect(() => new ReportAggregator('2024-01-01T00:00:00Z', '2024-03-01')).toThrow(RangeError);
  });

  it('utcDayOf agrees with Date for canonical and non-canonical timestamps', () => {
    for (const iso of ['2024-01-01T00:00:00.000Z', '2024-12-31T23:59:59.999Z', '2000-02-29T12:00:00Z', '2024-06-01T00:30:00+01:00', '2024-06-01T23:30:00-01:00']) {
      expect(utcDayOf(iso)).toBe(Math.floor(Date.parse(iso) / 86_400_000));
    }
    expect(utcDayOf('garbage')).toBeNaN();
  });
});

describe('latency percentiles (exact, nearest rank)', () => {
  it('1..100 in any order -> p50=50, p95=95, p99=99', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    // deterministic shuffle
    for (let i = values.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [values[i], values[j]] = [values[j], values[i]];
    }
    const agg = new ReportAggregator('2024-01-01', '2024-01-31');
    for (const v of values) agg.add(rec({ processingMs: v }));
    agg.add(rec({ processingMs: undefined })); // records without a processing time are left out
    agg.add(rec({ processingMs: Number.NaN }));
    expect(agg.summary().latencyMs).toEqual({ count: 100, p50: 50, p95: 95, p99: 99 });
  });

  it('nearest rank on small and skewed distributions', () => {
    expect(nearestRank([], 50)).toBeNull();
    expect(nearestRank([7], 50)).toBe(7);
    expect(nearestRank([7], 99)).toBe(7);
    const ten = Float64Array.from({ length: 10 }, (_, i) => i + 1);
    expect([nearestRank(ten, 50), nearestRank(ten, 95), nearestRank(ten, 99)]).toEqual([5, 10, 10]);
    // 1000 values: 900 x 10 ms, 90 x 100 ms, 10 x 5000 ms
    const agg = new ReportAggregator('2024-01-01', '2024-01-01');
    for (let i = 0; i < 1000; i++) agg.add(rec({ createdAt: '2024-01-01T00:00:00Z', processingMs: i < 900 ? 10 : i < 990 ? 100 : 5000 }));
    expect(agg.summary().latencyMs).toEqual({ count: 1000, p50: 10, p95: 100, p99: 100 });
    agg.add(rec({ processingMs: 5000 }));
    expect(agg.summary().latencyMs.p99).toBe(5000); // rank ceil(0.99 * 1001) = 991
  });

  it('grows past its initial capacity', () => {
    const agg = new ReportAggregator('2024-01-01', '2024-01-31');
    for (let i = 5000; i >= 1; i--) agg.add(rec({ processingMs: i }));
    expect(agg.summary().latencyMs).toEqual({ count: 5000, p50: 2500, p95: 4750, p99: 4950 });
  });
});

// ---------------------------------------------------------------- buildReport

describe('buildReport', () => {
  it('empty range: CSV with only the header, a valid PDF, zero-filled days, null percentiles', async () => {
    const out = sink();
    const progress: number[] = [];
    const r = await buildReport([], {
      from: '2024-01-01',
      to: '2024-01-31',
      formats: ['csv', 'pdf'],
      csv: out.stream,
      onProgress: (n) => void progress.push(n),
      pdfOptions: { compress: false, generatedAt: GENERATED_AT },
    });
    expect(out.text()).toBe(csvHeaderLine());
    expect(out.stream.writableFinished).toBe(true);
    expect(r.rows).toBe(0);
    expect(r.csvBytes).toBe(Buffer.byteLength(csvHeaderLine()));
    expect(r.summary.total).toBe(0);
    expect(r.summary.latencyMs).toEqual({ count: 0, p50: null, p95: null, p99: null });
    expect(r.summary.perDay).toHaveLength(31);
    expect(r.summary.perDay.every((d) => d.uploads === 0 && d.failures === 0)).toBe(true);
    expect(r.summary.topFailures).toEqual([]);
    expect(progress).toEqual([0]);
    const text = pdfText(expectValidPdf(r.pdf));
    expect(text).toContain('Total jobs: 0');
    expect(text).toContain('p50: n/a');
    expect(text).toContain('No uploads in this range');
    expect(text).toContain('No failures');
  });

  it('writes a header and one row per record, in order, UTF-8 without BOM; unicode round-trips', async () => {
    const names = ['🐱‍👤 ninja cat.jpg', '猫の写真.png', '사진.webp', 'صورة العائلة.jpg', 'cafe\u0301 (NFD).jpg', 'caf\u00e9 (NFC).jpg', 'quote " and, comma.jpg', 'multi\r\nline.jpg', '=cmd|\' /C calc\'!A0.jpg', '-1.jpg'];
    const records = names.map((filename, i) => rec({ jobId: `job-${i}`, filename }));
    const out = sink();
    const r = await buildReport(records, { from: '2024-01-01', to: '2024-01-31', formats: ['csv'], csv: out.stream });
    expect(r.pdf).toBeUndefined();
    expect(r.rows).toBe(names.length);
    const bytes = out.bytes();
    expect(r.csvBytes).toBe(bytes.length);
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('jobId'); // no BOM
    const rows = parseCsv(bytes.toString('utf8'));
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(names.length + 1);
    const expected = names.map((n) => (/^[=+\-@\t\r]/.test(n) ? "'" + n : n));
    expect(rows.slice(1).map((row) => row[1])).toEqual(expected);
    expect(rows.slice(1).map((row) => row[0])).toEqual(names.map((_, i) => `job-${i}`));
    expect(rows.every((row) => row.length === CSV_COLUMNS.length)).toBe(true);
    // NFD stays NFD (no normalisation)
    expect(rows[5][1]).toBe('cafe\u0301 (NFD).jpg');
    expect(rows[5][1]).not.toBe(rows[5][1].normalize('NFC'));
  });

  it('calls onProgress every progressEvery records and at the end (awaiting it)', async () => {
    const run = async (n: number, every?: number) => {
      const calls: number[] = [];
      await buildReport(many(n), {
        from: '2024-01-01',
        to: '2024-01-31',
        formats: [],
        progressEvery: every,
        onProgress: async (done) => {
          await new Promise((r) => setTimeout(r, 1));
          calls.push(done);
        },
      });
      return calls;
    };
    expect(await run(2500, 1000)).toEqual([1000, 2000, 2500]);
    expect(await run(2000, 1000)).toEqual([1000, 2000]);
    expect(await run(1500)).toEqual([1000, 1500]); // default progressEvery = 1000
    expect(await run(5, 2)).toEqual([2, 4, 5]);
    expect(await run(3, 1)).toEqual([1, 2, 3]);
    await expect(buildReport([], { from: '2024-01-01', to: '2024-01-01', formats: [], progressEvery: 0 })).rejects.toThrow(RangeError);
  });

  it('respects backpressure: a slow Writable with a tiny highWaterMark gets every row, in order', async () => {
    const chunks: Buffer[] = [];
    let writesWhileBuffered = 0;
    let writes = 0;
    const slow = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        setTimeout(cb, 2);
      },
    });
    const write = slow.write.bind(slow) as (chunk: unknown) => boolean;
    (slow as unknown as { write: (chunk: unknown) => boolean }).write = (chunk: unknown) => {
      writes++;
      if (slow.writableLength > 0) writesWhileBuffered++; // writing before 'drain' = ignoring backpressure
      return write(chunk);
    };
    const n = 6000;
    const r = await buildReport(asyncOf(many(n)), { from: '2024-01-01', to: '2024-01-31', formats: ['csv'], csv: slow });
    expect(r.rows).toBe(n);
    expect(writes).toBeGreaterThan(5); // chunked: more than one write...
    expect(writes).toBeLessThan(n / 100); // ...but batched, not one per row
    expect(writesWhileBuffered).toBe(0);
    expect(slow.writableFinished).toBe(true);
    const rows = parseCsv(Buffer.concat(chunks).toString('utf8'));
    expect(rows).toHaveLength(n + 1);
    expect(rows.slice(1).map((row) => row[0])).toEqual(Array.from({ length: n }, (_, i) => `job-${i}`));
  });

  it('leaves the stream alone when csv is not asked for, and needs a stream when it is', async () => {
    const out = sink();
    const r = await buildReport(many(10), { from: '2024-01-01', to: '2024-01-31', formats: ['pdf'], csv: out.stream });
    expect(out.bytes().length).toBe(0);
    expect(out.stream.writableEnded).toBe(false);
    expect(r.csvBytes).toBe(0);
    expectValidPdf(r.pdf);
    await expect(buildReport(many(1), { from: '2024-01-01', to: '2024-01-31', formats: ['csv'] })).rejects.toThrow(/csv stream/);
  });

  it('destroys the CSV stream when the source fails, and fails when the stream fails', async () => {
    function* broken(): Generator<UploadRecord> {
      yield* many(100);
      throw new Error('DynamoDB page failed');
    }
    const out = sink();
    out.stream.on('error', () => {});
    await expect(buildReport(broken(), { from: '2024-01-01', to: '2024-01-31', formats: ['csv'], csv: out.stream })).rejects.toThrow('DynamoDB page failed');
    expect(out.stream.destroyed).toBe(true);
    expect(out.stream.writableFinished).toBe(false);

    const failing = new Writable({
      highWaterMark: 16,
      write(_chunk, _enc, cb) {
        cb(new Error('disk full'));
      },
    });
    failing.on('error', () => {});
    await expect(buildReport(many(5000), { from: '2024-01-01', to: '2024-01-31', formats: ['csv'], csv: failing })).rejects.toThrow('disk full');
  });

  it('renders a PDF whose page text holds the totals', async () => {
    const records: UploadRecord[] = [];
    for (let i = 0; i < 1234; i++) {
      const status = i < 1100 ? 'succeeded' : i < 1200 ? 'failed' : 'processing';
      records.push(
        rec({
          jobId: `job-${i}`,
          status,
          bytes: 1000,
          outputBytes: status === 'succeeded' ? 500 : undefined,
          processingMs: status === 'processing' ? undefined : (i % 100) + 1,
          errorCode: status === 'failed' ? (i % 4 === 0 ? 'corrupt_image' : 'unsupported_format') : undefined,
          errorMessage: status === 'failed' ? 'Input buffer 写真 😀 is bad' : undefined,
          outputFormats: status === 'succeeded' ? ['jpeg', 'webp'] : undefined,
          createdAt: new Date(Date.UTC(2024, 0, 1 + (i % 31), 12)).toISOString(),
        }),
      );
    }
    const r = await buildReport(records, {
      from: '2024-01-01',
      to: '2024-01-31',
      formats: ['pdf'],
      pdfOptions: { compress: false, generatedAt: GENERATED_AT },
    });
    const pdf = expectValidPdf(r.pdf);
    expect(pageCount(pdf)).toBeLessThanOrEqual(2);
    const text = pdfText(pdf);
    for (const line of [
      'offload report',
      'Range: 2024-01-01 to 2024-01-31 (UTC, inclusive, 31 days)',
      'Generated at: 2024-02-01T12:00:00.000Z',
      'Total jobs: 1,234',
      'Succeeded: 1,100 (89.1%)',
      'Failed: 100 (8.1%)',
      'Processing: 34 (2.8%)',
      'Queued: 0 (0.0%)',
      'Bytes in: 1.18 MiB (1,234,000 bytes)',
      'Bytes out: 537 KiB (550,000 bytes)',
      'p50: 50 ms',
      'p95: 95 ms',
      'p99: 99 ms',
      'Uploads and failures per day',
      'unsupported_format',
      'corrupt_image',
      'image/jpeg',
      'webp',
      '01-31',
    ]) {
      expect(text).toContain(line);
    }
    // characters Helvetica cannot draw are replaced, not emitted as broken glyphs
    expect(text).toContain('Input buffer ?? ? is bad');
  });

  it('groups the chart by week beyond ~62 days, by month beyond ~62 weeks', async () => {
    const pdf = await renderPdf(new ReportAggregator('2024-01-01', '2024-06-30').summary(), { compress: false, generatedAt: GENERATED_AT });
    expect(pdfText(expectValidPdf(pdf))).toContain('Uploads and failures per week');
    const days = (from: string, to: string, perDay = 2) => {
      const agg = new ReportAggregator(from, to);
      for (const d of agg.summary().perDay) for (let k = 0; k < perDay; k++) agg.add(rec({ createdAt: `${d.day}T12:00:00Z`, status: k === 0 ? 'failed' : 'succeeded' }));
      return agg.summary().perDay;
    };
    const d31 = chartBuckets(days('2024-01-01', '2024-01-31'));
    expect([d31.granularity, d31.buckets.length]).toEqual(['day', 31]);
    const w = chartBuckets(days('2024-01-03', '2024-06-30')); // Wed..Sun
    expect(w.granularity).toBe('week');
    expect(w.buckets[0]).toEqual({ label: '01-03', uploads: 10, failures: 5 }); // partial first week Wed..Sun
    expect(w.buckets[1].label).toBe('01-08'); // a Monday
    expect(w.buckets.reduce((a, b) => a + b.uploads, 0)).toBe(180 * 2);
    const m = chartBuckets(days('2023-01-01', '2024-12-31', 1));
    expect([m.granularity, m.buckets.length, m.buckets[0].label]).toEqual(['month', 24, '2023-01']);
    const y = chartBuckets(days('2000-01-01', '2009-12-31', 1));
    expect(y.granularity).toBe('year');
  });

  it('stays within 2 pages with many statuses, types, formats and long codes', async () => {
    const agg = new ReportAggregator('2020-01-01', '2024-12-31');
    for (let i = 0; i < 300; i++) {
      agg.add(
        rec({
          status: i % 3 === 0 ? `weird_status_${i % 20}` : 'failed',
          contentType: `image/x-type-${i % 40}`,
          outputFormats: [`fmt${i % 30}`],
          errorCode: `a_very_long_error_code_that_goes_on_and_on_${i % 9}_${'x'.repeat(80)}`,
          errorMessage: 'm'.repeat(500),
          createdAt: new Date(Date.UTC(2020, 0, 1) + i * 5 * 86_400_000).toISOString(),
        }),
      );
    }
    const pdf = expectValidPdf(await renderPdf(agg.summary(), { compress: false, generatedAt: GENERATED_AT }));
    expect(pageCount(pdf)).toBeLessThanOrEqual(2);
    const text = pdfText(pdf);
    expect(text).toContain('Total jobs: 300');
    expect(text).toContain('Uploads and failures per month');
    expect(text).toMatch(/other \(33\)/); // 40 input types: 7 shown + 33 folded
    expect(text).toMatch(/Other statuses \(\d+\)/);
  });

  it('accepts a summary straight from JSON (renderPdf only reads the summary)', async () => {
    const summary: ReportSummary = JSON.parse(JSON.stringify(new ReportAggregator('2024-01-01', '2024-01-02').summary()));
    expectValidPdf(await renderPdf(summary));
  });
});

describe('formatting helpers', () => {
  it('formats integers and byte sizes', () => {
    expect(formatInt(0)).toBe('0');
    expect(formatInt(999)).toBe('999');
    expect(formatInt(1234)).toBe('1,234');
    expect(formatInt(1234567)).toBe('1,234,567');
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1,023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.00 GiB');
  });

  it('makes strings drawable with Helvetica', () => {
    expect(toWinAnsi('Café – “ok” …')).toBe('Café – “ok” …');
    expect(toWinAnsi('写真 😀\tx')).toBe('?? ? x');
  });
});
