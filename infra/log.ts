/** Plain line logger for entry points: `time [scope] message`, timings in ms. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  child(scope: string): Logger;
}

export function createLogger(scope: string, out: NodeJS.WritableStream = process.stderr): Logger {
  const line = (level: string, msg: string) => {
    const ts = new Date().toISOString().slice(11, 23);
    out.write(`${ts} ${level} [${scope}] ${msg}\n`);
  };
  return {
    info: (msg) => line('INFO ', msg),
    warn: (msg) => line('WARN ', msg),
    error: (msg) => line('ERROR', msg),
    child: (sub) => createLogger(`${scope}:${sub}`, out),
  };
}

export async function timed<T>(log: Logger, what: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await fn();
  log.info(`${what} (${Math.round(performance.now() - start)} ms)`);
  return result;
}
