import { styleText } from 'node:util';

/**
 * Everything the CLI prints goes through here: tables and numbers (pure, unit-tested) and the
 * terminal policy. Results go to stdout; progress, warnings and errors go to stderr, so
 * `--json` output can be piped. Bars and colours only when both stdout and stderr are
 * terminals and NO_COLOR is not set (https://no-color.org); otherwise progress is plain lines.
 */

export interface TerminalStreams {
  stdout: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): unknown };
  stderr: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): unknown };
  env: NodeJS.ProcessEnv;
}

/** True when progress bars and colours may be used. */
export function isInteractive({ stdout, stderr, env }: TerminalStreams): boolean {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return Boolean(stdout.isTTY) && Boolean(stderr.isTTY) && !noColor && env.TERM !== 'dumb';
}

type Style = 'red' | 'green' | 'yellow' | 'cyan' | 'gray' | 'bold' | 'dim';

export class Terminal {
  readonly interactive: boolean;
  constructor(readonly streams: TerminalStreams = { stdout: process.stdout, stderr: process.stderr, env: process.env }) {
    this.interactive = isInteractive(streams);
  }
  /** A result line on stdout. */
  out(line = ''): void {
    this.streams.stdout.write(`${line}\n`);
  }
  /** A progress or diagnostic line on stderr. */
  err(line: string): void {
    this.streams.stderr.write(`${line}\n`);
  }
  /** `offload: <message>` on stderr. */
  error(message: string): void {
    this.err(`offload: ${this.style('red', message)}`);
  }
  warn(message: string): void {
    this.err(`offload: ${this.style('yellow', message)}`);
  }
  json(value: unknown): void {
    this.out(JSON.stringify(value, null, 2));
  }
  style(style: Style, text: string): string {
    return this.interactive ? styleText(style, text) : text;
  }
  /** A job status, coloured by how it went. */
  status(status: string): string {
    if (status === 'succeeded') return this.style('green', status);
    if (status === 'failed') return this.style('red', status);
    if (status === 'processing') return this.style('cyan', status);
    return this.style('yellow', status);
  }
}

// ---------------------------------------------------------------- pure formatting

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
const HAS_ANSI = /\u001b\[/;

/** Width of a string on a terminal, ignoring colour codes (code points; wide glyphs count as one). */
export function visibleWidth(s: string): number {
  return [...s.replace(ANSI, '')].length;
}

/** Cuts a plain string to `max` columns with an ellipsis. */
export function truncate(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max <= 1) return chars.slice(0, max).join('');
  return `${chars.slice(0, max - 1).join('')}…`;
}

export interface Column {
  header: string;
  align?: 'left' | 'right';
  /** Longer cells are cut with an ellipsis (plain cells only). */
  maxWidth?: number;
}

/**
 * A plain-text table: a header row, then one row per item, columns separated by two spaces,
 * trailing spaces trimmed. Cells may carry colour codes (they do not count towards widths).
 */
export function formatTable(columns: Column[], rows: string[][]): string {
  const cells = rows.map((row) =>
    columns.map((col, i) => {
      const cell = (row[i] ?? '').replace(/\s*\n\s*/g, ' ');
      return col.maxWidth && !HAS_ANSI.test(cell) ? truncate(cell, col.maxWidth) : cell;
    }),
  );
  const widths = columns.map((col, i) => Math.max(visibleWidth(col.header), ...cells.map((r) => visibleWidth(r[i]))));
  const pad = (s: string, i: number) => {
    const gap = ' '.repeat(widths[i] - visibleWidth(s));
    return columns[i].align === 'right' ? gap + s : s + gap;
  };
  return [columns.map((c) => c.header), ...cells].map((r) => r.map(pad).join('  ').trimEnd()).join('\n');
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** 200 -> "3m 20s"; undefined -> "n/a". */
export function formatDuration(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return 'n/a';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** An ISO timestamp as "2025-01-31 12:34:56" (UTC), or "-" for none. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
