/**
 * PDF rendering of a report summary (pdfkit; pure apart from pdfkit itself).
 *
 * The PDF shows only aggregates, never filenames, so the built-in Helvetica (WinAnsi, no
 * embedded font) is enough: every drawn string goes through toWinAnsi(), which replaces
 * characters Helvetica cannot encode (emoji, CJK, ...) with '?' (pdfkit would otherwise emit
 * broken hex for them).
 *
 * Text is drawn at absolute positions with `lineBreak: false`, so pdfkit never wraps a line or
 * adds a page behind our back; the layout adds a page itself when a block does not fit
 * (a report is one or two A4 pages).
 */
import PDFDocument from 'pdfkit';
import type { ReportSummary } from './core';

export const PDF_CONTENT_TYPE = 'application/pdf';

export interface RenderPdfOptions {
  /** Default "offload report". */
  title?: string;
  /** Shown on the page and used as the PDF CreationDate. Default: now. */
  generatedAt?: Date;
  /** Compress content streams (default true). Tests turn it off to read the page text. */
  compress?: boolean;
}

const PAGE_MARGIN = 50;
const FONT = 'Helvetica';
const FONT_BOLD = 'Helvetica-Bold';
const COLOR_TEXT = '#222222';
const COLOR_MUTED = '#666666';
const COLOR_GRID = '#dddddd';
const COLOR_UPLOADS = '#4a7bd0';
const COLOR_FAILURES = '#d9534f';
/** Most bars drawn in the chart before days are grouped into weeks (then months, years). */
const MAX_BARS = 62;
/** Rows per table (formats, input types); the rest is folded into one "other" row. */
const MAX_TABLE_ROWS = 8;

/** Unicode code points that WinAnsi (cp1252) maps into 0x80..0x9F. */
const WIN_ANSI_EXTRAS = new Set([
  0x20ac, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x017d,
  0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x017e,
  0x0178,
]);

/** Makes a string drawable with a standard-14 font: controls -> space, non-WinAnsi -> '?'. */
export function toWinAnsi(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || c === 0x7f) out += ' ';
    else if (c < 0x7f || (c >= 0xa0 && c <= 0xff) || WIN_ANSI_EXTRAS.has(c)) out += ch;
    else if (c >= 0x300 && c <= 0x36f) continue; // combining marks: drop rather than '?'
    else out += '?';
  }
  return out;
}

/** 1234567 -> "1,234,567" (locale-independent). */
export function formatInt(n: number): string {
  const s = String(Math.round(Math.abs(n)));
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (i > 0 && (s.length - i) % 3 === 0) out += ',';
    out += s[i];
  }
  return n < 0 ? '-' + out : out;
}

/** Human-readable size with binary (IEC) units: 1536 -> "1.50 KiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${formatInt(Number.isFinite(n) ? n : 0)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

function formatPercent(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : '0.0%';
}

function formatMs(ms: number | null): string {
  return ms === null ? 'n/a' : `${formatInt(ms)} ms`;
}

const STATUS_LABELS: Record<string, string> = {
  succeeded: 'Succeeded',
  failed: 'Failed',
  processing: 'Processing',
  queued: 'Queued',
  awaiting_upload: 'Awaiting upload',
};

interface Bucket {
  label: string;
  uploads: number;
  failures: number;
}

type Granularity = 'day' | 'week' | 'month' | 'year';

/**
 * Groups the per-day series so that at most MAX_BARS bars are drawn: days, else ISO weeks
 * (Monday-start; the first and last may be partial), else calendar months, else years.
 */
export function chartBuckets(perDay: ReportSummary['perDay']): { granularity: Granularity; buckets: Bucket[] } {
  const keyOf: Record<Granularity, (day: string) => string> = {
    day: (d) => d,
    week: (d) => {
      const t = Date.parse(d + 'T00:00:00Z');
      const dow = (new Date(t).getUTCDay() + 6) % 7; // Monday = 0
      return new Date(t - dow * 86_400_000).toISOString().slice(0, 10);
    },
    month: (d) => d.slice(0, 7),
    year: (d) => d.slice(0, 4),
  };
  const labelOf: Record<Granularity, (firstDay: string) => string> = {
    day: (d) => d.slice(5),
    week: (d) => d.slice(5),
    month: (d) => d,
    year: (d) => d,
  };
  for (const granularity of ['day', 'week', 'month', 'year'] as Granularity[]) {
    const buckets: Bucket[] = [];
    let lastKey: string | undefined;
    for (const p of perDay) {
      const key = keyOf[granularity](p.day);
      if (key !== lastKey) {
        buckets.push({ label: labelOf[granularity](granularity === 'month' || granularity === 'year' ? key : p.day), uploads: 0, failures: 0 });
        lastKey = key;
      }
      const b = buckets[buckets.length - 1];
      b.uploads += p.uploads;
      b.failures += p.failures;
    }
    if (buckets.length <= MAX_BARS || granularity === 'year') return { granularity, buckets };
  }
  /* c8 ignore next */
  throw new Error('unreachable');
}

/** A "nice" axis step (1, 2 or 5 x 10^k) giving about `ticks` intervals up to max. */
function niceStep(max: number, ticks: number): number {
  if (max <= 0) return 1;
  const raw = max / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
  return Math.max(1, step); // counts are integers
}

/**
 * Renders the summary as a PDF (1-2 A4 pages): title, range, generation time, totals by
 * status, bytes in/out, output formats, input types, a per-day (or per-week...) bar chart of
 * uploads and failures, latency percentiles and the top failure reasons.
 *
 * Page text wording (stable; tests rely on it): "Total jobs: 1,234", "Succeeded: 1,000 (81.0%)",
 * "Failed: 34 (2.8%)", "Bytes in: 1.18 MiB (1,234,567 bytes)", "p95: 800 ms", ...
 */
export async function renderPdf(summary: ReportSummary, opts: RenderPdfOptions = {}): Promise<Buffer> {
  const title = opts.title ?? 'offload report';
  const generatedAt = opts.generatedAt ?? new Date();
  const doc = new PDFDocument({
    size: 'A4',
    margin: PAGE_MARGIN,
    compress: opts.compress ?? true,
    autoFirstPage: true,
    info: {
      Title: toWinAnsi(title),
      Subject: `Photo jobs created ${summary.from} to ${summary.to} (UTC)`,
      Author: 'offload',
      Creator: 'offload',
      CreationDate: generatedAt,
      ModDate: generatedAt,
    },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const left = PAGE_MARGIN;
  const width = doc.page.width - 2 * PAGE_MARGIN;
  const bottom = () => doc.page.height - PAGE_MARGIN;
  let y = PAGE_MARGIN;

  const text = (s: string, x: number, yy: number, size = 10, font = FONT, color = COLOR_TEXT) => {
    doc.font(font).fontSize(size).fillColor(color).text(toWinAnsi(s), x, yy, { lineBreak: false });
  };
  const textRight = (s: string, xRight: number, yy: number, size = 10, font = FONT, color = COLOR_TEXT) => {
    const t = toWinAnsi(s);
    doc.font(font).fontSize(size);
    text(t, xRight - doc.widthOfString(t), yy, size, font, color);
  };
  /** Cuts s (with an ellipsis) so that it fits maxWidth at the given size. */
  const fit = (s: string, maxWidth: number, size = 10, font = FONT): string => {
    let t = toWinAnsi(s);
    doc.font(font).fontSize(size);
    if (doc.widthOfString(t) <= maxWidth) return t;
    while (t.length > 0 && doc.widthOfString(t + '\u2026') > maxWidth) t = t.slice(0, -1);
    return t + '\u2026';
  };
  const ensureSpace = (h: number) => {
    if (y + h > bottom()) {
      doc.addPage();
      y = PAGE_MARGIN;
    }
  };
  const heading = (s: string, x = left) => text(s, x, y, 12, FONT_BOLD);
  const rule = (yy: number) => {
    doc.moveTo(left, yy).lineTo(left + width, yy).lineWidth(0.5).strokeColor(COLOR_GRID).stroke();
  };

  // ---- Header
  text(title, left, y, 22, FONT_BOLD);
  y += 30;
  const days = summary.perDay.length;
  text(`Range: ${summary.from} to ${summary.to} (UTC, inclusive, ${formatInt(days)} day${days === 1 ? '' : 's'})`, left, y, 10);
  y += 14;
  text(`Generated at: ${generatedAt.toISOString()}`, left, y, 10, FONT, COLOR_MUTED);
  y += 18;
  rule(y);
  y += 12;

  // ---- Totals (left column) and data / latency (right column)
  const colW = width / 2 - 10;
  const rightX = left + width / 2 + 10;
  const top = y;
  heading('Jobs');
  heading('Data', rightX);
  y += 18;
  let yl = y;
  text(`Total jobs: ${formatInt(summary.total)}`, left, yl, 11, FONT_BOLD);
  yl += 16;
  const statusOrder = Object.keys(STATUS_LABELS);
  let statuses = Object.entries(summary.byStatus).sort(
    ([a], [b]) => (statusOrder.indexOf(a) + 1 || 99) - (statusOrder.indexOf(b) + 1 || 99),
  );
  if (statuses.length > MAX_TABLE_ROWS) {
    // Only unknown statuses can push past the known five: fold the excess into one line.
    const rest = statuses.slice(MAX_TABLE_ROWS - 1);
    statuses = [...statuses.slice(0, MAX_TABLE_ROWS - 1), [`Other statuses (${rest.length})`, rest.reduce((a, [, n]) => a + n, 0)]];
  }
  for (const [status, count] of statuses) {
    const label = STATUS_LABELS[status] ?? status;
    text(`${fit(label, colW - 90)}: ${formatInt(count)} (${formatPercent(count, summary.total)})`, left, yl);
    yl += 14;
  }
  if (summary.outOfRange > 0) {
    text(`Outside the range: ${formatInt(summary.outOfRange)}`, left, yl, 10, FONT, COLOR_MUTED);
    yl += 14;
  }

  let yr = y;
  text(`Bytes in: ${formatBytes(summary.bytesIn)} (${formatInt(summary.bytesIn)} bytes)`, rightX, yr);
  yr += 14;
  text(`Bytes out: ${formatBytes(summary.bytesOut)} (${formatInt(summary.bytesOut)} bytes)`, rightX, yr);
  yr += 22;
  text('Latency', rightX, yr, 12, FONT_BOLD);
  yr += 18;
  const lat = summary.latencyMs;
  text(`Processing time, ${formatInt(lat.count)} job${lat.count === 1 ? '' : 's'} (nearest rank)`, rightX, yr, 9, FONT, COLOR_MUTED);
  yr += 14;
  text(`p50: ${formatMs(lat.p50)}`, rightX, yr);
  yr += 14;
  text(`p95: ${formatMs(lat.p95)}`, rightX, yr);
  yr += 14;
  text(`p99: ${formatMs(lat.p99)}`, rightX, yr);
  yr += 14;
  y = Math.max(yl, yr, top) + 10;

  // ---- Output formats and input types (two small tables side by side)
  const countTable = (x: number, yy: number, head: string, keyHead: string, entries: Array<[string, number]>, of: number): number => {
    text(head, x, yy, 12, FONT_BOLD);
    yy += 18;
    text(keyHead, x, yy, 9, FONT_BOLD, COLOR_MUTED);
    textRight('Jobs', x + colW - 50, yy, 9, FONT_BOLD, COLOR_MUTED);
    textRight('Share', x + colW, yy, 9, FONT_BOLD, COLOR_MUTED);
    yy += 13;
    if (entries.length === 0) {
      text('none', x, yy, 10, FONT, COLOR_MUTED);
      return yy + 14;
    }
    let rows = entries;
    if (entries.length > MAX_TABLE_ROWS) {
      const rest = entries.slice(MAX_TABLE_ROWS - 1);
      rows = [...entries.slice(0, MAX_TABLE_ROWS - 1), [`other (${rest.length})`, rest.reduce((a, [, n]) => a + n, 0)]];
    }
    for (const [k, n] of rows) {
      text(fit(k, colW - 110), x, yy);
      textRight(formatInt(n), x + colW - 50, yy);
      textRight(formatPercent(n, of), x + colW, yy, 10, FONT, COLOR_MUTED);
      yy += 14;
    }
    return yy;
  };
  const formatRows = Object.entries(summary.formats);
  const typeRows = Object.entries(summary.inputTypes);
  ensureSpace(31 + 14 * (Math.min(MAX_TABLE_ROWS, Math.max(formatRows.length, typeRows.length, 1)) + 1));
  const yf = countTable(left, y, 'Output formats', 'Format', formatRows, summary.total);
  const yt = countTable(rightX, y, 'Input types', 'Content type', typeRows, summary.total);
  y = Math.max(yf, yt) + 12;

  // ---- Chart
  const { granularity, buckets } = chartBuckets(summary.perDay);
  const chartH = 170;
  const labelsH = 26;
  ensureSpace(18 + 16 + chartH + labelsH + 10);
  heading(`Uploads and failures per ${granularity}`);
  // Legend
  const legend = (x: number, color: string, label: string) => {
    doc.rect(x, y + 3, 8, 8).fillColor(color).fill();
    text(label, x + 12, y + 2, 9, FONT, COLOR_MUTED);
  };
  legend(left + width - 140, COLOR_UPLOADS, 'Uploads');
  legend(left + width - 70, COLOR_FAILURES, 'Failures');
  y += 18;
  if (granularity === 'week') {
    text('Weeks start on Monday (UTC); the first and last may be partial.', left, y, 8, FONT, COLOR_MUTED);
  }
  y += 16;
  const axisW = 42;
  const plotX = left + axisW;
  const plotW = width - axisW;
  const plotTop = y;
  const plotBottom = y + chartH;
  const maxUploads = buckets.reduce((m, b) => Math.max(m, b.uploads), 0);
  const step = niceStep(maxUploads, 4);
  const yMax = Math.max(step, Math.ceil(maxUploads / step) * step);
  const yOf = (v: number) => plotBottom - (v / yMax) * chartH;
  // Grid and y labels
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const gy = yOf(v);
    doc.moveTo(plotX, gy).lineTo(plotX + plotW, gy).lineWidth(0.5).strokeColor(COLOR_GRID).stroke();
    textRight(formatInt(v), plotX - 5, gy - 3.5, 7, FONT, COLOR_MUTED);
  }
  // Bars
  const slot = plotW / buckets.length;
  const barW = Math.max(0.5, slot * 0.75);
  buckets.forEach((b, i) => {
    const x = plotX + i * slot + (slot - barW) / 2;
    if (b.uploads > 0) doc.rect(x, yOf(b.uploads), barW, plotBottom - yOf(b.uploads)).fillColor(COLOR_UPLOADS).fill();
    if (b.failures > 0) doc.rect(x, yOf(b.failures), barW, plotBottom - yOf(b.failures)).fillColor(COLOR_FAILURES).fill();
  });
  // Axes
  doc.moveTo(plotX, plotTop).lineTo(plotX, plotBottom).lineTo(plotX + plotW, plotBottom).lineWidth(0.8).strokeColor('#444444').stroke();
  // X labels: as many as fit without overlapping
  doc.font(FONT).fontSize(7);
  const labelW = Math.max(...buckets.map((b) => doc.widthOfString(b.label))) + 6;
  const every = Math.max(1, Math.ceil(labelW / slot));
  buckets.forEach((b, i) => {
    if (i % every !== 0) return;
    const cx = plotX + i * slot + slot / 2;
    doc.moveTo(cx, plotBottom).lineTo(cx, plotBottom + 3).lineWidth(0.5).strokeColor('#444444').stroke();
    const w = doc.widthOfString(b.label);
    text(b.label, cx - w / 2, plotBottom + 5, 7, FONT, COLOR_MUTED);
  });
  if (maxUploads === 0) {
    const msg = 'No uploads in this range';
    doc.font(FONT).fontSize(10);
    text(msg, plotX + (plotW - doc.widthOfString(msg)) / 2, plotTop + chartH / 2 - 5, 10, FONT, COLOR_MUTED);
  }
  y = plotBottom + labelsH;

  // ---- Top failure reasons
  const nFail = summary.topFailures.length;
  ensureSpace(18 + 13 + 14 * Math.max(1, nFail) + 10);
  heading('Top failure reasons');
  y += 18;
  const failed = summary.byStatus.failed ?? 0;
  const cCode = left;
  const cCountRight = left + 170;
  const cShareRight = left + 220;
  const cExample = left + 235;
  text('Code', cCode, y, 9, FONT_BOLD, COLOR_MUTED);
  textRight('Count', cCountRight, y, 9, FONT_BOLD, COLOR_MUTED);
  textRight('Share', cShareRight, y, 9, FONT_BOLD, COLOR_MUTED);
  text('Example message', cExample, y, 9, FONT_BOLD, COLOR_MUTED);
  y += 13;
  if (nFail === 0) {
    text('No failures', left, y, 10, FONT, COLOR_MUTED);
    y += 14;
  }
  for (const f of summary.topFailures) {
    text(fit(f.code, 110), cCode, y);
    textRight(formatInt(f.count), cCountRight, y);
    textRight(formatPercent(f.count, failed), cShareRight, y, 10, FONT, COLOR_MUTED);
    if (f.example) text(fit(f.example, left + width - cExample, 9), cExample, y + 1, 9, FONT, COLOR_MUTED);
    y += 14;
  }

  doc.end();
  return done;
}
