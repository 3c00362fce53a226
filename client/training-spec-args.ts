import { UserFacingError } from '../infra/errors';
import { MAX_SPEC_BYTES, MODEL_NAME, trainingSpec, type TrainingSpecInput } from '../workflows/contracts/training-spec';
import { formatZodIssues, parseMonths, readJson } from './args';

/**
 * Builds the continuousTraining spec from `train`'s flags and checks it with the workflow's own
 * zod schema before anything is sent: a bad spec costs no workflow, and the message names the
 * field exactly as the workflow would.
 */
export interface TrainFlags {
  model?: string;
  spec?: string;
  specJson?: string;
  months?: string;
  sampleRows?: number;
}

export function buildTrainingSpec(flags: TrainFlags): TrainingSpecInput {
  if (flags.spec && flags.specJson) throw new UserFacingError('train: give --spec <file> or --spec-json <json>, not both');
  const raw = flags.spec ? readJson('--spec', flags.spec, 'file') : flags.specJson ? readJson('--spec-json', flags.specJson, 'inline') : undefined;
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) throw new UserFacingError('invalid spec: (root): must be a JSON object');
  // Without a spec the CLI trains the bundled flights task, which only needs months.
  const spec: Record<string, unknown> = raw ? { ...(raw as Record<string, unknown>) } : { preset: 'flights-delay' };

  if (flags.model) {
    if (!MODEL_NAME.test(flags.model)) throw new UserFacingError(`invalid spec: model: must be 1–63 lowercase letters, digits and dashes, starting with a letter or digit (got ${JSON.stringify(flags.model)})`);
    if (typeof spec.model === 'string' && spec.model !== flags.model) throw new UserFacingError(`train: --model ${flags.model} differs from the spec's model ${JSON.stringify(spec.model)}`);
    spec.model = flags.model;
  }
  if (spec.model === undefined) throw new UserFacingError('train: --model <name> is required (or "model" in the spec)');
  if (flags.months) spec.dataset = parseMonths(flags.months);
  if (spec.dataset === undefined) throw new UserFacingError('invalid spec: dataset: required — pass --months 2001-01:2001-02 (bundled flights data) or a spec with "dataset"');
  if (flags.sampleRows !== undefined) spec.sampleRows = flags.sampleRows;

  const bytes = JSON.stringify(spec).length;
  if (bytes > MAX_SPEC_BYTES) throw new UserFacingError(`invalid spec: the spec is ${bytes} bytes, over the ${MAX_SPEC_BYTES}-byte limit; pass data by URI (dataset.uris), not inline`);
  const parsed = trainingSpec.safeParse(spec);
  if (!parsed.success) throw new UserFacingError(`invalid spec: ${formatZodIssues(parsed.error)}`);
  // The raw input travels, not the parsed one: defaults stay the workflow's business and the
  // history shows what the user asked for.
  return spec as TrainingSpecInput;
}

/** `train-<model>-20250101t020000-ab12`: sortable, unique enough, readable in the Web UI. */
export function defaultTrainingWorkflowId(model: string, now = new Date(), rand = Math.random().toString(36).slice(2, 6)): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, '').toLowerCase();
  return `train-${model}-${stamp}-${rand}`;
}
