import { MultiBar, type Options, type Params, type SingleBar } from 'cli-progress';
import { formatBytes, truncate, type Terminal } from './output';

/** One line of progress: a file being uploaded, a job being waited for, a report being built. */
export interface ProgressLine {
  /** Progress in the line's unit (bytes, rows); `total` may become known later. */
  update(value: number, total?: number): void;
  /** A short status shown after the bar (and printed as a line when there are no bars). */
  status(text: string): void;
}

export interface Progress {
  add(name: string, opts: { total?: number; unit: 'bytes' | 'rows'; status: string }): ProgressLine;
  /** A message above the bars (or a plain stderr line). */
  log(line: string): void;
  stop(): void;
}

/** Bars on a terminal, plain status lines on stderr otherwise (or nothing, when quiet). */
export function createProgress(term: Terminal, opts: { nameWidth?: number; quiet?: boolean } = {}): Progress {
  if (term.interactive) return new BarsProgress(opts.nameWidth ?? 20);
  return new LinesProgress(term, Boolean(opts.quiet));
}

export interface Payload {
  name: string;
  status: string;
  unit: 'bytes' | 'rows';
}

/**
 * One bar line, fitted to the terminal's width: cli-progress cuts its last frame at the
 * terminal width counting escape codes as characters, so bar lines carry no colour and are
 * never wider than the terminal.
 */
export function renderBar(columns: number, nameWidth: number, params: Pick<Params, 'value' | 'total'>, payload: Payload): string {
  const total = params.total > 0 ? params.total : 0;
  const fraction = total > 0 ? Math.min(1, params.value / total) : 0;
  const amount =
    payload.unit === 'bytes'
      ? `${formatBytes(params.value)}${total > 0 ? ` / ${formatBytes(total)}` : ''}`
      : `${params.value}${total > 0 ? ` / ${total}` : ''} rows`;
  const name = truncate(payload.name, nameWidth).padEnd(nameWidth);
  // name, bar, percentage, amount, status: the bar gives way first on narrow terminals.
  const fixed = nameWidth + 1 + 1 + 4 + 2 + Math.max(19, amount.length) + 1;
  const barWidth = Math.max(8, Math.min(24, columns - 1 - fixed - 26)); // 26: room for most statuses
  const filled = Math.round(fraction * barWidth);
  const bar = total > 0 ? '█'.repeat(filled) + '░'.repeat(barWidth - filled) : ' '.repeat(barWidth);
  const pct = total > 0 ? `${String(Math.floor(fraction * 100)).padStart(3)}%` : '    ';
  return truncate(`${name} ${bar} ${pct}  ${amount.padEnd(19)} ${payload.status}`, Math.max(20, columns - 1));
}

class BarsProgress implements Progress {
  private readonly multi: MultiBar;
  private readonly onSignal = () => {
    this.stop();
    process.exit(130);
  };

  constructor(nameWidth: number) {
    const options: Options = {
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      gracefulExit: false,
      autopadding: true,
      format: (_o: Options, params: Params, payload: Payload) => renderBar(process.stderr.columns || 80, nameWidth, params, payload),
    };
    this.multi = new MultiBar(options);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  add(name: string, opts: { total?: number; unit: 'bytes' | 'rows'; status: string }): ProgressLine {
    const payload: Payload = { name, status: opts.status, unit: opts.unit };
    const bar: SingleBar = this.multi.create(opts.total ?? 0, 0, payload);
    let value = 0;
    return {
      update: (v, total) => {
        value = v;
        if (total !== undefined && total !== bar.getTotal()) bar.setTotal(total);
        bar.update(v, payload);
      },
      status: (text) => {
        payload.status = text;
        bar.update(value, payload);
      },
    };
  }

  log(line: string): void {
    this.multi.log(`${line}\n`);
  }

  stop(): void {
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    this.multi.stop();
  }
}

/** No terminal: one stderr line per status change (`a.jpg: processing`), nothing per byte. */
class LinesProgress implements Progress {
  constructor(
    private readonly term: Terminal,
    private readonly quiet: boolean,
  ) {}

  add(name: string, opts: { total?: number; unit: 'bytes' | 'rows'; status: string }): ProgressLine {
    let last = '';
    const say = (text: string) => {
      if (text === last) return;
      last = text;
      if (!this.quiet) this.term.err(`${name}: ${text}`);
    };
    say(opts.status);
    return { update: () => undefined, status: say };
  }

  log(line: string): void {
    this.term.err(line);
  }

  stop(): void {}
}

