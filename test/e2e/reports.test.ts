import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { pdfText } from '../helpers/pdf-text';
import { sharedInstance, useSharedInstance } from './client';

/**
 * Report jobs end to end: uploads, then a report over their range, whose files match the jobs.
 * The report covers every job of its days, so this file has the shared instance to itself
 * while it runs (no other file's jobs appear or change meanwhile).
 */
const ctx = sharedInstance();
useSharedInstance('exclusive');

/** Days (UTC, YYYY-MM-DD) from the one `createdAt` falls on up to today. */
function daysSince(createdAt: string): { from: string; to: string } {
  return { from: createdAt.slice(0, 10), to: new Date().toISOString().slice(0, 10) };
}

/** The thumbnail jobs created on the days from..to (inclusive). */
async function thumbnailJobsOn({ from, to }: { from: string; to: string }): Promise<any[]> {
  return (await ctx.listJobs('type=thumbnail')).filter((j) => j.createdAt.slice(0, 10) >= from && j.createdAt.slice(0, 10) <= to);
}

describe('report jobs', () => {
  it('reports on the uploads of a range: CSV rows and PDF totals match the jobs', async () => {
    const good = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#3366cc' } }).jpeg().toBuffer();
    const ids = await Promise.all([
      ctx.presignedUpload('=cmd|calc.jpg', 'image/jpeg', good),
      ctx.presignedUpload('résumé, "final".jpg', 'image/jpeg', good),
      ctx.presignedUpload('broken.jpg', 'image/jpeg', Buffer.from('not an image')),
    ]);
    const mine = await Promise.all(ids.map((id) => ctx.waitForJob(id)));
    // The days of these uploads (two, should the test run across midnight UTC).
    const range = daysSince(mine.map((j) => j.createdAt).sort()[0]);
    const jobs = await thumbnailJobsOn(range);
    const succeeded = jobs.filter((j) => j.status === 'succeeded').length;
    const failed = jobs.filter((j) => j.status === 'failed').length;
    expect(jobs.length).toBeGreaterThanOrEqual(3);

    const res = await ctx.call('POST', 'reports', { json: range });
    expect(res.status).toBe(202);
    const report = await ctx.waitForJob(res.json.jobId, 120_000);
    expect(report.status, JSON.stringify(report.error)).toBe('succeeded');
    expect(report.type).toBe('report');
    expect(report.params).toEqual({ ...range, formats: ['csv', 'pdf'] });
    expect(report.progress).toEqual({ done: jobs.length, total: jobs.length });
    const csvOut = report.outputs.find((o: any) => o.format === 'csv');
    const pdfOut = report.outputs.find((o: any) => o.format === 'pdf');
    expect(csvOut.contentType).toBe('text/csv');
    expect(pdfOut.contentType).toBe('application/pdf');

    const csv = await (await fetch(csvOut.url)).text();
    const lines = csv.split('\r\n').filter(Boolean);
    expect(lines[0]).toBe('jobId,filename,contentType,bytes,width,height,status,errorCode,createdAt,completedAt,processingMs');
    expect(lines.length - 1).toBe(jobs.length);
    expect(new Set(lines.slice(1).map((l) => l.slice(0, 36)))).toEqual(new Set(jobs.map((j) => j.jobId)));
    expect(csv).toContain(`${ids[0]},'=cmd|calc.jpg,`); // formula neutralized
    expect(csv).toContain(`${ids[1]},"résumé, ""final"".jpg",`); // RFC 4180 quoting, unicode kept
    expect(csv).toMatch(new RegExp(`${ids[2]},broken\\.jpg,[^\\r]*,failed,unsupported_format,`));

    const pdf = Buffer.from(await (await fetch(pdfOut.url)).arrayBuffer());
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const text = pdfText(pdf);
    expect(text).toContain(range.from);
    expect(text).toContain(range.to);
    expect(text.replace(/\s+/g, ' ')).toMatch(new RegExp(`Total jobs:? ${jobs.length}\\b`));
    expect(text.replace(/\s+/g, ' ')).toMatch(new RegExp(`Succeeded:? ${succeeded}\\b`));
    expect(text.replace(/\s+/g, ' ')).toMatch(new RegExp(`Failed:? ${failed}\\b`));
  });

  it('makes a valid report of zero uploads for an empty range', async () => {
    const res = await ctx.call('POST', 'reports', { json: { from: '2001-01-01', to: '2001-01-31', formats: ['csv'] } });
    expect(res.status).toBe(202);
    const report = await ctx.waitForJob(res.json.jobId);
    expect(report.status).toBe('succeeded');
    expect(report.outputs.map((o: any) => o.format)).toEqual(['csv']);
    const csv = await (await fetch(report.outputs[0].url)).text();
    expect(csv.split('\r\n').filter(Boolean)).toHaveLength(1);
  });

  it('refuses bad requests with 400 and a message that says what is wrong', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ from: '2026-03-01', to: '2026-01-01' }, /after/],
      [{ from: 'last tuesday', to: '2026-01-01' }, /YYYY-MM-DD/],
      [{ from: '2020-01-01', to: '2026-01-01' }, /days/],
      [{ from: '2026-01-01', to: '2026-01-02', formats: ['docx'] }, /format/],
      [{ from: '2026-01-01', to: '2026-01-02', extra: 1 }, /extra/],
      ['{"from": "2026-01-01", ', /JSON/],
    ];
    for (const [json, message] of cases) {
      const res = await ctx.call('POST', 'reports', { json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.json.error.code).toBe('invalid_request');
      expect(res.json.error.message).toMatch(message);
    }
  });
});
