/**
 * What ends a step's failure for good: the `resume` overrides that change its cause, or an
 * action outside the run (accept a schema, register a trainer). A `DataError` carries it in its
 * details, so the workflow pauses only for a failure a resume can fix, and the CLI's hint names
 * the fix. Workflow-safe: no imports.
 */

/** Spec fields a `resume` signal may override (`resumeOverrides` in training-spec.ts). */
export const OVERRIDE_FIELDS = ['dataset', 'label', 'features', 'split', 'sampleRows', 'hyperparameters', 'gates', 'resources'] as const;
export type OverrideField = (typeof OVERRIDE_FIELDS)[number];

export interface StepFix {
  /** Overrides that change the cause, most direct first; empty when no override can. */
  overrides: OverrideField[];
  /** Something to do outside the run before a plain `resume` (a command, a deployment). */
  action?: string;
}

/** Data that cannot be read as given: another dataset (or the same, once fixed) helps. */
export const DATASET_FIX: StepFix = { overrides: ['dataset'] };

/** The fix a step failure's details declare, if any (failures of older workers declare none). */
export function stepFix(details: unknown): StepFix | undefined {
  const fix = details && typeof details === 'object' ? (details as { fix?: unknown }).fix : undefined;
  if (!fix || typeof fix !== 'object' || !Array.isArray((fix as StepFix).overrides)) return undefined;
  const f = fix as StepFix;
  return { overrides: f.overrides.filter((o): o is OverrideField => (OVERRIDE_FIELDS as readonly string[]).includes(o)), ...(typeof f.action === 'string' ? { action: f.action } : {}) };
}

/**
 * Whether pausing for a `resume` can help: a failure that declares no fix at all (no override,
 * no action) would fail the same way on every resume. A failure that declares nothing (timeouts,
 * exhausted retries of an outage) may pass once the outage ends, so it pauses.
 */
export function resumeCanFix(details: unknown): boolean {
  const fix = stepFix(details);
  return !fix || fix.overrides.length > 0 || fix.action !== undefined;
}

const EXAMPLES: Record<OverrideField, string> = {
  dataset: '"dataset": {"uris": ["s3://bucket/data.parquet"]}',
  label: '"label": {"column": "…", "greaterThan": 0}',
  features: '"features": [{"name": "…", "kind": "numeric"}]',
  split: '"split": {"kind": "random", "testFraction": 0.2}',
  sampleRows: '"sampleRows": 100000',
  hyperparameters: '"hyperparameters": {…}',
  gates: '"gates": {…}',
  resources: '"resources": {"gpu": 0}',
};

/** The CLI's line for a paused run: what fixes it, with an example of the first override. */
export function fixHint(workflowId: string, details: unknown): string {
  const fix = stepFix(details);
  const abort = `(or mlops abort --workflow-id ${workflowId})`;
  if (!fix) return `fix the cause, then: mlops resume --workflow-id ${workflowId} [--overrides '{…}']   ${abort}`;
  const parts: string[] = [];
  if (fix.action) parts.push(`${fix.action}, then: mlops resume --workflow-id ${workflowId}`);
  if (fix.overrides.length) {
    parts.push(`resume with ${fix.overrides.join(' or ')} changed: mlops resume --workflow-id ${workflowId} --overrides '{${EXAMPLES[fix.overrides[0]!]}}'`);
  }
  return `${parts.join('; or ')}   ${abort}`;
}
