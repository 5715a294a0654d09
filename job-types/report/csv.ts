/**
 * CSV encoding of report rows (pure; no I/O).
 *
 * Format decisions:
 * - RFC 4180: comma separator, CRLF line ends, a header row, a cell is quoted ("...") when it
 *   holds `"`, `,`, CR or LF, and inner quotes are doubled.
 * - UTF-8 WITHOUT a byte-order mark. The file is served as `text/csv; charset=utf-8`
 *   (RFC 4180 + RFC 7111), which every CSV library and `csvkit`/pandas/DuckDB reads as is.
 *   A BOM would help only old Excel versions that open the file by double-click, and it breaks
 *   naive consumers (the first header becomes "\uFEFFjobId"). Excel users can use
 *   Data > From Text/CSV, which detects UTF-8.
 * - Unicode (emoji, CJK, RTL, combining marks) is written untouched: no normalisation.
 *   (A lone UTF-16 surrogate, which cannot be encoded, becomes U+FFFD when written as UTF-8.)
 * - Formula injection (OWASP "CSV Injection"): a STRING cell that begins with `=`, `+`, `-`,
 *   `@`, TAB or CR is prefixed with a single quote `'`, so that spreadsheet software shows it as
 *   text instead of evaluating it. Values of type number are written as plain numbers and never
 *   prefixed (they cannot carry a formula). String cells are always neutralised, even when
 *   they look numeric ("-1"), because a filename is text.
 * - undefined / null / NaN / ±Infinity -> empty cell.
 */

/** One row of a report: a photo (thumbnail) job, flattened. */
export interface UploadRecord {
  jobId: string;
  filename: string;
  contentType?: string;
  bytes?: number;
  width?: number;
  height?: number;
  /** awaiting_upload | queued | processing | succeeded | failed */
  status: string;
  errorCode?: string;
  errorMessage?: string;
  /** ISO-8601 UTC */
  createdAt: string;
  completedAt?: string;
  processingMs?: number;
  /** Sum of the output sizes in bytes. */
  outputBytes?: number;
  /** Output formats, e.g. ['jpeg', 'webp']. */
  outputFormats?: string[];
}

export const CSV_COLUMNS = [
  'jobId',
  'filename',
  'contentType',
  'bytes',
  'width',
  'height',
  'status',
  'errorCode',
  'createdAt',
  'completedAt',
  'processingMs',
] as const;

export type CsvColumn = (typeof CSV_COLUMNS)[number];

/** Media type to store the CSV with. */
export const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8';

const NEEDS_QUOTES = /[",\r\n]/;
const QUOTES = /"/g;

/** Encodes a string cell: formula neutralisation, then RFC 4180 quoting. */
function stringCell(s: string): string {
  if (s.length === 0) return s;
  const c = s.charCodeAt(0);
  // = (61)  + (43)  - (45)  @ (64)  TAB (9)  CR (13)
  if (c === 61 || c === 43 || c === 45 || c === 64 || c === 9 || c === 13) s = "'" + s;
  if (NEEDS_QUOTES.test(s)) return '"' + s.replace(QUOTES, '""') + '"';
  return s;
}

/** Encodes a number cell: finite numbers as themselves, anything else empty. */
function numberCell(n: number): string {
  return Number.isFinite(n) ? String(n) : '';
}

/**
 * One CSV cell (without separator). Strings are neutralised against formula injection and
 * quoted per RFC 4180; finite numbers are written as numbers; undefined/null -> ''.
 */
export function csvCell(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return stringCell(value);
    case 'number':
      return numberCell(value);
    case 'undefined':
      return '';
    case 'bigint':
    case 'boolean':
      return String(value);
    default:
      if (value === null) return '';
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
      return stringCell(String(value));
  }
}

/** The header row, CRLF-terminated. Header names are plain identifiers: no quoting needed. */
export function csvHeaderLine(): string {
  return CSV_HEADER;
}
const CSV_HEADER = CSV_COLUMNS.join(',') + '\r\n';

/**
 * One data row (columns = CSV_COLUMNS, in order), CRLF-terminated.
 * Unrolled on purpose: it runs once per record (a million times for a big report), so no
 * intermediate array or join.
 */
export function csvLine(rec: UploadRecord): string {
  return (
    csvCell(rec.jobId) +
    ',' +
    csvCell(rec.filename) +
    ',' +
    csvCell(rec.contentType) +
    ',' +
    csvCell(rec.bytes) +
    ',' +
    csvCell(rec.width) +
    ',' +
    csvCell(rec.height) +
    ',' +
    csvCell(rec.status) +
    ',' +
    csvCell(rec.errorCode) +
    ',' +
    csvCell(rec.createdAt) +
    ',' +
    csvCell(rec.completedAt) +
    ',' +
    csvCell(rec.processingMs) +
    '\r\n'
  );
}
