import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';

/**
 * Parses a workflow input with zod. A bad input fails the workflow at once, non-retryably, with
 * every problem named by its field path — instead of a workflow task that retries forever.
 */
export function parseInput<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = issueLines(parsed.error);
  throw ApplicationFailure.nonRetryable(`invalid ${what} input: ${problems.join('; ')}`, 'InvalidInput', { problems });
}

/** Each zod issue as `field.path: message` (`(input)` for the whole value). */
export function issueLines(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`);
}
