/**
 * Errors a user can fix by changing configuration or input. Entry points print these as one
 * line (no stack trace) and exit non-zero; anything else is a bug and keeps its stack.
 */
export class UserFacingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class ConfigError extends UserFacingError {}

export function describeError(err: unknown): string {
  if (err instanceof AggregateError && !err.message && err.errors.length) {
    return describeError(err.errors[0]);
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = err.message || String(err);
    return code && !msg.includes(code) ? `${msg} (${code})` : msg;
  }
  return String(err);
}

/**
 * Runs an entry point's main function: a UserFacingError becomes one line on stderr and exit
 * code 2; anything else is printed with its stack and exit code 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof UserFacingError) {
      process.stderr.write(`error: ${err.message.replace(/\s*\n\s*/g, '; ')}\n`);
      process.exit(2);
    }
    process.stderr.write(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
