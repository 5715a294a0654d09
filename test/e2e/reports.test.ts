import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { pdfText } from '../helpers/pdf-text';
import { e2eContext } from './client';

/** Report jobs end to end: uploads, then a report over their range, whose files match the jobs. */
const ctx = e2eContext();
const today = new Date().toISOString().slice(0, 10);

async function allThumbnailJobsToday(): Promise<any[]> {
  const jobs: any[] = [];
  let cursor: string | null = null;
  do {
    const res: any = await ctx.call('GET', `jobs?type=thumbnail&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(res.status).toBe(200);
    jobs.push(...res.json.jobs.filter((j: any) => j.createdAt.startsWith(today)));
    cursor = res.json.nextCursor;
  } while (cursor);
  return jobs;
}

describe('report jobs', () => {
  it('reports on the uploads of a range: CSV rows and PDF totals match the jobs', async () => {
    const good = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#3366cc' } }).jpeg().toBuffer();
    const ids = await Promise.all([
      ctx.presignedUpload('=cmd|calc.jpg', 'image/jpeg', good),
      ctx.presignedUpload('résumé, "final".jpg', 'image/jpeg', good),
      ctx.presignedUpload('broken.jpg', 'image/jpeg', Buffer.from('not an image')),
    ]);
    await Promise.all(ids.map((id) => ctx.waitForJob(id)));
    const jobs = await allThumbnailJobsToday();
    const succeeded = jobs.filter((j) => j.status === 'succeeded').length;
    const failed = jobs.filter((j) => j.status === 'failed').length;
    expect(jobs.length).toBeGreaterThanOrEqual(3);

    const res = await ctx.call('POST', 'reports', { json: { from: today, to: today } });
    expect(res.status).toBe(202);
    const report = await ctx.waitForJob(res.json.jobId, 120_000);
    expect(report.status, JSON.stringify(report.error)).toBe('succeeded');
    expect(report.type).toBe('report');
    expect(report.params).toEqual({ from: today, to: today, formats: ['csv', 'pdf'] });
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
    expect(text).toContain(today);
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
