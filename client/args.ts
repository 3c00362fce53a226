import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import { UserFacingError } from '../infra/errors';
import { MODEL_NAME } from '../workflows/contracts/training-spec';

/**
 * Argument helpers shared by the CLI's commands. Everything a user types goes through here or
 * through a zod schema, so a mistake ends as one `error:` line naming the flag or field.
 */

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode, with its errors turned into one-line user errors. */
export function parseCommand<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (err) {
    // parseArgs says e.g. "Unknown option '--foo'. To specify a positional argument starting with a '-', …"
    const msg = (err as Error).message.split('. To specify')[0]!;
    throw new UserFacingError(`${command}: ${msg} (see mlops help)`);
  }
}

export function requireModel(command: string, value: string | undefined): string {
  if (!value) throw new UserFacingError(`${command}: --model <name> is required`);
  if (!MODEL_NAME.test(value)) throw new UserFacingError(`${command}: --model: must be 1–63 lowercase letters, digits and dashes, starting with a letter or digit (got ${JSON.stringify(value)})`);
  return value;
}

export function requireString(command: string, flag: string, value: string | undefined): string {
  if (!value) throw new UserFacingError(`${command}: --${flag} is required`);
  return value;
}

/** `path.field: message; …` — the shape every boundary in the project uses. */
export function formatZodIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new UserFacingError(`invalid ${what}: ${formatZodIssues(parsed.error)}`);
  return parsed.data;
}

/** `{"a": 1}` inline, else the path of a JSON file; `inline`/`file` force one reading. */
export function readJson(flag: string, value: string, mode: 'either' | 'inline' | 'file' = 'either'): unknown {
  const inline = mode === 'inline' || (mode === 'either' && value.trimStart().startsWith('{'));
  const text = inline ? value : readJsonFile(flag, value);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserFacingError(`${flag}: not valid JSON: ${(err as Error).message}`);
  }
}

function readJsonFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserFacingError(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function parseIntFlag(flag: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min) throw new UserFacingError(`--${flag}: must be a whole number ≥ ${min} (got ${JSON.stringify(value)})`);
  return Number(value);
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90s`, `30m`, `24h`, `7d` → seconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(value.trim());
  if (!m || Number(m[1]) === 0) throw new UserFacingError(`--${flag}: must be a duration like 90s, 30m, 24h or 7d (got ${JSON.stringify(value)})`);
  return Number(m[1]) * UNIT_SECONDS[m[2]!]!;
}

/** `2001-01:2001-03` (or one month `2001-02`) → the flights dataset of a training spec. */
export function parseMonths(value: string): { flights: { from: string; to: string } } {
  const m = /^(\d{4}-\d{2})(?::(\d{4}-\d{2}))?$/.exec(value.trim());
  if (!m) throw new UserFacingError(`--months: must be YYYY-MM or YYYY-MM:YYYY-MM (got ${JSON.stringify(value)})`);
  return { flights: { from: m[1]!, to: m[2] ?? m[1]! } };
}

/** A standard 5-field cron line (Temporal also takes @daily & co. and 6–7 fields; it has the last word). */
export function checkCron(value: string): string {
  const v = value.trim();
  if (!v.startsWith('@') && !/^\S+(\s+\S+){4,6}$/.test(v)) throw new UserFacingError(`--cron: must be a cron expression like '0 2 * * *' (got ${JSON.stringify(value)})`);
  return v;
}
