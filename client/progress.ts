/**
 * Progress on stderr while the CLI waits: on a terminal one status line rewritten every second
 * (what runs now and the elapsed time); elsewhere (CI logs, pipes) a plain line each time the
 * message changes, so a log shows every step without a line per second. stdout stays for the
 * result, which keeps `--json` output parseable.
 */
export interface Progress {
  update(message: string): void;
  /** A line that stays (e.g. a step finished), printed above the status line. */
  note(message: string): void;
  stop(): void;
}

export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function createProgress(opts: { stream?: NodeJS.WriteStream; quiet?: boolean; tty?: boolean } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet) return { update: () => undefined, note: () => undefined, stop: () => undefined };
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const started = Date.now();
  let message = '';
  let printed = '';

  if (!tty) {
    return {
      update(m) {
        if (m === printed) return;
        printed = m;
        stream.write(`[${formatElapsed(Date.now() - started)}] ${m}\n`);
      },
      note: (m) => void stream.write(`${m}\n`),
      stop: () => undefined,
    };
  }

  const render = () => {
    const line = `${message}  ${formatElapsed(Date.now() - started)}`;
    const width = stream.columns ? stream.columns - 1 : 120;
    stream.write(`\r\x1b[2K${line.length > width ? line.slice(0, width - 1) + '…' : line}`);
  };
  const timer = setInterval(render, 1000);
  timer.unref();
  return {
    update(m) {
      message = m;
      render();
    },
    note(m) {
      stream.write(`\r\x1b[2K${m}\n`);
      if (message) render();
    },
    stop() {
      clearInterval(timer);
      if (message) stream.write('\r\x1b[2K');
      message = '';
    },
  };
}
