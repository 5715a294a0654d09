import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedInstance, useSharedInstance } from './client';

/**
 * The web console in a real browser: Debian's Chromium (`apt-get install -y chromium`, see the
 * README's setup), driven by playwright-core, against the shared local-mode instance. A person's
 * path: open the page, type the key, upload a photo through the file input, see its thumbnail,
 * request a report, download it, cancel a queued job, and the same page at 360 px.
 * Screenshots go to .offload/artifacts/console/ (kept after the run).
 */
const ctx = sharedInstance();
// Alone on the shared instance while it runs: the page shows the newest jobs of everyone, so
// other files' jobs would push this one's off the page a person is looking at.
useSharedInstance('exclusive');

const CHROMIUM = process.env.OFFLOAD_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', '.offload', 'artifacts', 'console');
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's with \`apt-get install -y chromium\` (as root; the README's setup does), or set OFFLOAD_CHROMIUM`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
});

afterAll(async () => {
  await browser?.close();
});

/** Uncaught errors in the page's own script: none expected, checked last. */
const pageErrors: string[] = [];

const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

/** The list item of a job, once the page shows it. */
const jobItem = (jobId: string) => page.locator(`li[data-job-id="${jobId}"]`);

describe('the web console', () => {
  it('is served without a key, with a Content-Security-Policy, in under 100 KB gzipped', async () => {
    const res = await fetch(ctx.apiUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    // Images only from here and the storage origin the API presigns for (local: the emulator).
    expect(csp).toMatch(new RegExp(`img-src 'self' ${ctx.awsEndpoint.replace(/\/$/, '').replace(/[.]/g, '\\.')}`));
    const html = await res.text();
    let total = zlib.gzipSync(html).length;
    for (const file of ['app.js', 'app.css']) {
      const r = await fetch(new URL(`console/${file}`, ctx.apiUrl));
      expect(r.status, file).toBe(200);
      total += zlib.gzipSync(Buffer.from(await r.arrayBuffer())).length;
    }
    expect(total).toBeLessThan(100 * 1024);
    // Nothing from elsewhere: no external script, style or font.
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  it('takes the key from the keyboard; a wrong key is refused with a message', async () => {
    await page.goto(ctx.apiUrl);
    await page.locator('#api-key').focus();
    await page.keyboard.type('not-a-key');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#status').textContent()).toContain('refused');
    expect(await page.locator('#app').isHidden()).toBe(true);
    await page.locator('#api-key').fill(ctx.apiKey);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#app').isVisible()).toBe(true);
    // Kept for the tab only, never in the URL.
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('offload.apiKey'))).toBe(ctx.apiKey);
    expect(page.url()).not.toContain(ctx.apiKey);
  });

  it('uploads a photo through the file input and shows its thumbnail', async () => {
    const jpeg = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#3070b0', noise: { type: 'gaussian', mean: 120, sigma: 30 } } })
      .jpeg()
      .toBuffer();
    const file = path.join(ARTIFACTS, 'upload.jpg');
    fs.writeFileSync(file, jpeg);
    await page.locator('#files').setInputFiles(file);
    // Its upload's progress bar fills, and the line names the job.
    const line = page.locator('#uploads li', { hasText: 'upload.jpg' });
    await expect.poll(() => line.textContent()).toMatch(/uploaded: job [0-9a-f]{8}/);
    const short = /job ([0-9a-f]{8})/.exec((await line.textContent()) ?? '')![1];
    const job = page.locator(`li[data-job-id^="${short}"]`);
    await expect.poll(() => job.getAttribute('data-status'), { timeout: 60_000 }).toBe('succeeded');
    const img = job.locator('.thumbs img').first();
    await expect.poll(() => img.evaluate((i: any) => i.complete && i.naturalWidth), { timeout: 30_000 }).toBeGreaterThan(0);
    // The image is the thumbnail the API describes (its width attribute comes from the job's outputs).
    expect(await img.evaluate((i: any) => i.naturalWidth)).toBe(Number(await img.getAttribute('width')));
    await shot('uploaded');
  });

  it('requests a report and shows both download links, which download', async () => {
    const day = new Date().toISOString().slice(0, 10);
    await page.locator('#from').fill(day);
    await page.locator('#to').fill(day);
    await page.getByRole('button', { name: 'Request report' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/Report requested: job [0-9a-f]{8}/);
    const short = /job ([0-9a-f]{8})/.exec((await page.locator('#status').textContent()) ?? '')![1];
    const job = page.locator(`li[data-job-id^="${short}"]`);
    await expect.poll(() => job.getAttribute('data-status'), { timeout: 90_000 }).toBe('succeeded');
    const links = job.locator('.links a');
    expect(await links.allTextContents()).toEqual([expect.stringMatching(/^Download CSV/), expect.stringMatching(/^Download PDF/)]);
    const pdf = await fetch((await links.nth(1).getAttribute('href'))!);
    expect(pdf.status).toBe(200);
    expect(Buffer.from(await pdf.arrayBuffer()).subarray(0, 5).toString('latin1')).toBe('%PDF-');
  });

  it('cancels a queued job', async () => {
    // A report asked to wait 15 minutes stays queued: time enough to cancel it.
    const created = await ctx.call('POST', 'reports', { json: { from: '2001-01-01', to: '2001-01-02', delaySeconds: 900 } });
    expect(created.status).toBe(202);
    const jobId: string = created.json.jobId;
    // No reload, no click: the list shows it on its next refresh (live updates).
    const job = jobItem(jobId);
    await expect.poll(() => job.getAttribute('data-status')).toBe('queued');
    await job.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => job.getAttribute('data-status')).toBe('cancelled');
    expect((await ctx.call('GET', `jobs/${jobId}`)).json.status).toBe('cancelled');
  });

  it('shows every job type in the queues table, with numbers', async () => {
    const types = ctx.outputs.JobTypes.split(',');
    const rows = page.locator('#queues tbody tr');
    await expect.poll(() => rows.count()).toBe(types.length);
    const cells = await rows.evaluateAll((trs: any[]) => trs.map((tr) => Array.from(tr.children as ArrayLike<any>).map((c) => String(c.textContent ?? ''))));
    expect(cells.map((c) => c[0])).toEqual(types);
    for (const c of cells) for (const n of [c[1], c[2], c[3], c[5]]) expect(n).toMatch(/^\d+$/);
  });

  it('fits 360 px without sideways scrolling', async () => {
    await page.setViewportSize({ width: 360, height: 780 });
    await expect.poll(() => page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth as number)).toBeLessThanOrEqual(360);
    // No element sticks out past the right edge (the queue table may scroll inside its own box).
    const wide = await page.evaluate(() =>
      Array.from((globalThis as any).document.querySelectorAll('body *') as ArrayLike<any>)
        .filter((e) => !e.closest('.scroll') && e.getBoundingClientRect().right > 360.5)
        .map((e) => String(e.tagName) + (e.id ? `#${e.id}` : '')),
    );
    expect(wide).toEqual([]);
    await shot('narrow-360');
  });

  it('ran without an error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
