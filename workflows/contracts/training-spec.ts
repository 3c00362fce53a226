import { z } from 'zod';
import { GPU_CLASS_PATTERN } from './names';
import { trainingPriority } from './priority';

/**
 * The continuous-training spec: what a user passes as plain JSON from the Temporal CLI or a
 * schedule. Parsed with zod inside the workflow (so a bad spec fails at once, naming the field)
 * and again by the activities that act on it. Workflow-safe: zod only.
 */

export const MODEL_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A column identifier: it is quoted into SQL, so it may hold nothing that could close a quote. */
export const COLUMN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

/** The months the bundled flights data covers (vega-datasets `flights-3m.parquet`). */
export const FLIGHTS_MONTHS = { from: '2001-01', to: '2001-06' } as const;

/**
 * Small public tables that come with the package (vega-datasets, a dependency), for trying the
 * other task kinds without data of one's own: Seattle's daily weather 2012–2015 (date,
 * precipitation, temp_max, temp_min, wind and the weather: drizzle, fog, rain, snow or sun).
 */
export const BUNDLED_DATASETS = { 'seattle-weather': 'seattle-weather.csv' } as const;

/** Largest spec accepted inline: data travels by URI, never inside the workflow input. */
export const MAX_SPEC_BYTES = 64 * 1024;

const modelName = z.string().regex(MODEL_NAME, 'must be 1–63 lowercase letters, digits and dashes, starting with a letter or digit (e.g. flights-delay)');
const column = z.string().regex(COLUMN, 'must be a column name: letters, digits and _, starting with a letter or _');

export const datasetUri = z
  .string()
  .max(2048)
  .refine((u) => /^(s3:\/\/[a-z0-9][a-z0-9.-]{1,62}\/.+|file:\/\/\/.+)$/.test(u), 'must be an s3://bucket/key or file:///absolute/path URI')
  .refine((u) => !u.split(/[/\\]/).some((seg) => seg === '..' || /%2e%2e/i.test(seg)), 'must not contain ".." segments');

const datasetSpec = z.union([
  z
    .object({
      uris: z.array(datasetUri).min(1, 'needs at least one URI').max(64),
      format: z.enum(['parquet', 'csv']).optional().describe('default: from the file extension'),
    })
    .strict(),
  z
    .object({
      flights: z
        .object({ from: z.string().regex(MONTH, 'must be YYYY-MM'), to: z.string().regex(MONTH, 'must be YYYY-MM') })
        .strict()
        .refine((m) => m.from <= m.to, { message: 'from must not be after to', path: ['to'] })
        .refine((m) => m.from >= FLIGHTS_MONTHS.from && m.to <= FLIGHTS_MONTHS.to, {
          message: `the bundled flights data covers ${FLIGHTS_MONTHS.from} to ${FLIGHTS_MONTHS.to}`,
          path: ['from'],
        }),
    })
    .strict(),
  z.object({ bundled: z.enum(Object.keys(BUNDLED_DATASETS) as [keyof typeof BUNDLED_DATASETS]) }).strict(),
]);

/** What a model derives from a timestamp input itself (UTC): hour 0–23, day of week 0–6 from Sunday, month 1–12. */
export const TIME_TRANSFORMS = ['hour', 'dayofweek', 'month'] as const;
export type TimeTransform = (typeof TIME_TRANSFORMS)[number];

export const featureSpec = z
  .object({
    name: column,
    kind: z.enum(['numeric', 'categorical']),
    /** Source column; defaults to `name`. */
    column: column.optional(),
    /** Derived from a timestamp column, inside the model: it takes the column as epoch seconds (UTC). */
    transform: z.enum(TIME_TRANSFORMS).optional(),
  })
  .strict()
  .refine((f) => !f.transform || f.kind === 'numeric', { message: 'a transformed feature is numeric', path: ['kind'] });

/** What a model predicts: two classes (a probability), one of several classes (their probabilities and the likeliest) or a number. */
export const TASK_KINDS = ['binary', 'multiclass', 'regression'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export const labelSpec = z
  .object({
    column,
    /** Default binary: specs written before there were kinds mean binary. */
    kind: z.enum(TASK_KINDS).optional(),
    /** Binary only: positive when `column > threshold` (e.g. delay > 15); without it the column must hold 0/1. */
    greaterThan: z.number().finite().optional(),
  })
  .strict()
  .refine((l) => l.greaterThan === undefined || (l.kind ?? 'binary') === 'binary', { message: 'greaterThan makes two classes: only for kind binary (a regression predicts the column itself, a multiclass task its values)', path: ['greaterThan'] });

/** The task kind of a label: absent means binary, as every spec before kinds existed. */
export const taskKind = (label: { kind?: TaskKind }): TaskKind => label.kind ?? 'binary';

const splitSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('time'), column, testFraction: z.number().gt(0).lt(1).default(0.2) }).strict(),
  z.object({ kind: z.literal('random'), seed: z.number().int().min(0).max(2 ** 31 - 1).default(42), testFraction: z.number().gt(0).lt(1).default(0.2) }).strict(),
]);

export const gbdtHyperparameters = z
  .object({
    rounds: z.number().int().min(1).max(5000),
    maxDepth: z.number().int().min(1).max(16),
    learningRate: z.number().gt(0).max(1),
    maxBins: z.number().int().min(2).max(255),
    lambda: z.number().min(0).max(1e6),
    minChildWeight: z.number().min(0).max(1e9),
    subsample: z.number().gt(0).max(1),
    seed: z.number().int().min(0).max(2 ** 31 - 1),
  })
  .partial()
  .strict();

export const logregHyperparameters = z
  .object({
    l2: z.number().min(0).max(1e6),
    maxIterations: z.number().int().min(1).max(1000),
    smoothing: z.number().min(0).max(1e9),
  })
  .partial()
  .strict();

export type GbdtHyperparameters = z.output<typeof gbdtHyperparameters>;
export type LogregHyperparameters = z.output<typeof logregHyperparameters>;

/**
 * A command trainer's hyperparameters, and those of a trainer registered on the workers, are
 * their own business here: any small JSON object. The train activity checks them against the
 * registered trainer's own schema.
 */
const otherHyperparameters = z.record(z.string().max(64), z.union([z.number(), z.string().max(1024), z.boolean(), z.null()]));

/** A trainer's name: `gbdt`, `logreg`, `command`, or one registered through the plugin options. */
export const TRAINER_NAME = /^[a-z][a-z0-9-]{0,62}$/;

const sliceSpec = z
  .object({
    feature: column,
    /** Top-k most frequent categories, or numeric buckets by upper edges. */
    top: z.number().int().min(1).max(100).optional(),
    edges: z.array(z.number().finite()).min(1).max(50).optional(),
  })
  .strict()
  .refine((s) => (s.top === undefined) !== (s.edges === undefined), { message: 'give exactly one of top or edges', path: ['top'] });

export const trainingSpec = z
  .object({
    model: modelName,
    dataset: datasetSpec,
    /** Named task: features, label and split for a known dataset. */
    preset: z.enum(['flights-delay']).optional(),
    features: z.array(featureSpec).min(1).max(200).optional(),
    label: labelSpec.optional(),
    split: splitSpec.optional(),
    trainer: z.string().regex(TRAINER_NAME, 'must be gbdt, logreg, command or the name of a trainer registered on the workers (lowercase letters, digits, dashes)').default('gbdt'),
    /** For `trainer: command`: the name of a trainer registered on the workers (MLOPS_COMMAND_TRAINERS). */
    command: modelName.optional(),
    hyperparameters: z.record(z.string(), z.unknown()).default({}),
    /**
     * Columns added, removed or retyped against the model's data schema: `stop` the run (the
     * default; the new schema waits for `mlops schema accept`) or `accept` it as the next version.
     */
    schemaChange: z.enum(['stop', 'accept']).optional(),
    resources: z
      .object({
        gpu: z.number().int().min(0).max(8).default(1),
        gpuClass: z.string().regex(GPU_CLASS_PATTERN, 'must be lowercase letters, digits and dashes, e.g. h100').optional(),
        /** Pools tried in turn when no worker picks the step up in time: GPU classes, or `any` (mlops-gpu). */
        fallback: z.array(z.union([z.literal('any'), z.string().regex(GPU_CLASS_PATTERN)])).max(8).default([]),
        scheduleToStartSeconds: z.number().int().min(1).max(86_400).default(600),
        /** `gpu`: the evaluate step goes where train goes (the GPU queues), and scores there on CUDA when the worker has it (MLOPS_ONNX_DEVICE=cuda). */
        evaluateOn: z.enum(['cpu', 'gpu']).optional(),
      })
      .strict()
      .default({ gpu: 1, fallback: [], scheduleToStartSeconds: 600 }),
    gates: z
      .object({
        minAuc: z.number().min(0).max(1).default(0.55),
        /** How far below the production champion's AUC (same test split) a candidate may be; for a regression, the share by which its RMSE may exceed the champion's. */
        maxRegression: z.number().min(0).max(1).default(0.005),
        minSliceAuc: z.number().min(0).max(1).optional(),
        /** Regression: the largest test RMSE accepted (the other regression gates: R² above minR2, no worse than ridge and the champion). */
        maxRmse: z.number().gt(0).optional(),
        /** Regression: the smallest test R² accepted; absent, 0 (the candidate must beat predicting the mean). */
        minR2: z.number().max(1).optional(),
        /** Regression: the largest RMSE of a slice with minSliceRows test rows. */
        maxSliceRmse: z.number().gt(0).optional(),
        /** Multiclass: what the baseline and champion comparisons judge (maxRegression and maxBaselineLoss: an absolute drop of macro-F1, or the share by which log loss may exceed). */
        multiclassMetric: z.enum(['macroF1', 'logLoss']).optional(),
        /** Multiclass: the smallest test macro-F1 accepted (the other multiclass gates: log loss below the class prior's, no worse than multinomial logistic regression and the champion). */
        minMacroF1: z.number().min(0).max(1).optional(),
        /** Multiclass: the largest test log loss accepted. */
        maxLogLoss: z.number().gt(0).optional(),
        /** Slices with fewer test rows are reported but not gated. */
        minSliceRows: z.number().int().min(1).default(500),
        /** Batch-1 latency budget (p50 in onnxruntime on the validating worker). */
        latencyBudgetMs: z.number().gt(0).max(10_000).default(20),
        /** Largest |ONNX − trainer| score difference accepted. */
        maxParityDiff: z.number().min(0).max(1).default(1e-4),
        /** How far below the logistic-regression baseline's AUC on the same split a candidate may be; for a regression, the share by which its RMSE may exceed ridge regression's. */
        maxBaselineLoss: z.number().min(0).max(1).default(0),
        /** A production champion that cannot be scored on this split (changed features, a lost file): reject the candidate, or accept it without the comparison. */
        onIncomparableChampion: z.enum(['reject', 'accept']).default('reject'),
        /**
         * A candidate whose inputs or outputs differ from production's breaks every client of the
         * model: it is rejected unless this declares the change (the registry, the promotion and
         * the alias history then record it).
         */
        allowSignatureChange: z.boolean().default(false),
      })
      .strict()
      .default({ minAuc: 0.55, maxRegression: 0.005, minSliceRows: 500, latencyBudgetMs: 20, maxParityDiff: 1e-4, maxBaselineLoss: 0, onIncomparableChampion: 'reject', allowSignatureChange: false }),
    evaluation: z
      .object({
        threshold: z.number().gt(0).lt(1).default(0.5),
        slices: z.array(sliceSpec).max(10).optional(),
      })
      .strict()
      .default({ threshold: 0.5 }),
    /** Train on a deterministic sample of this many rows (demos, tests). */
    sampleRows: z.number().int().min(100).max(100_000_000).optional(),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(42),
    /** Reuse the outputs of this earlier run's steps whose inputs are unchanged. */
    resumeFrom: z.string().min(1).max(1000).optional(),
    /**
     * Where the run's CPU and GPU steps queue against other runs: `key` 1 (first) to 5 (last),
     * default 3; a lifecycle sets it from what triggered the retrain. The model is the fairness key.
     */
    priority: trainingPriority.optional(),
    /** When a step fails for good: pause for a `resume` signal (default) or fail the run. */
    onFailure: z.enum(['pause', 'fail']).default('pause'),
    /** How long a paused run waits for `resume` or `abort` before failing. */
    resumeTimeoutHours: z.number().gt(0).max(24 * 90).default(24 * 7),
    training: z
      .object({
        heartbeatSeconds: z.number().int().min(2).max(3600).default(60),
        timeoutMinutes: z.number().int().min(1).max(7 * 24 * 60).default(6 * 60),
        checkpointEvery: z.number().int().min(1).max(10_000).default(10),
        maxAttempts: z.number().int().min(1).max(20).default(5),
      })
      .strict()
      .default({ heartbeatSeconds: 60, timeoutMinutes: 360, checkpointEvery: 10, maxAttempts: 5 }),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!s.preset && !(s.features && s.label)) {
      ctx.addIssue({ code: 'custom', path: ['features'], message: 'give features and label, or a preset (flights-delay)' });
    }
    if (s.trainer === 'command' && !s.command) ctx.addIssue({ code: 'custom', path: ['command'], message: 'trainer "command" needs the name of a registered command trainer' });
    if (s.trainer !== 'command' && s.command) ctx.addIssue({ code: 'custom', path: ['command'], message: `only used with trainer "command" (trainer is "${s.trainer}")` });
    const hp = s.trainer === 'gbdt' ? gbdtHyperparameters : s.trainer === 'logreg' ? logregHyperparameters : otherHyperparameters;
    const parsed = hp.safeParse(s.hyperparameters);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: ['hyperparameters', ...issue.path.map(String)], message: `${issue.message} (trainer ${s.trainer})` });
    }
    const names = (s.features ?? []).map((f) => f.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) ctx.addIssue({ code: 'custom', path: ['features'], message: `feature ${dup} is listed twice` });
    const label = s.label ?? (s.preset ? PRESETS[s.preset].label : undefined);
    if (label && taskKind(label) !== 'binary' && s.gates.minSliceAuc !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['gates', 'minSliceAuc'], message: `AUC needs two classes: not a gate of a ${taskKind(label)} task${taskKind(label) === 'regression' ? ' (use gates.maxSliceRmse)' : ''}` });
    }
    const multiclassOnly = (['multiclassMetric', 'minMacroF1', 'maxLogLoss'] as const).find((g) => s.gates[g] !== undefined);
    if (label && taskKind(label) !== 'multiclass' && multiclassOnly) {
      ctx.addIssue({ code: 'custom', path: ['gates', multiclassOnly], message: `${multiclassOnly} gates a multiclass task; this task is ${taskKind(label)}` });
    }
    if (label && taskKind(label) !== 'regression' && (s.gates.maxRmse !== undefined || s.gates.maxSliceRmse !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['gates', s.gates.maxRmse !== undefined ? 'maxRmse' : 'maxSliceRmse'], message: `RMSE gates a regression; this task is ${taskKind(label)}` });
    }
    if (s.resources.gpu === 0 && (s.resources.gpuClass || s.resources.fallback.length)) {
      ctx.addIssue({ code: 'custom', path: ['resources', 'gpuClass'], message: 'gpuClass and fallback need gpu ≥ 1' });
    }
    if (s.resources.gpu === 0 && s.resources.evaluateOn === 'gpu') {
      ctx.addIssue({ code: 'custom', path: ['resources', 'evaluateOn'], message: 'evaluateOn "gpu" needs gpu ≥ 1 (with gpu 0 every step runs on the CPU queue)' });
    }
  });

export type TrainingSpecInput = z.input<typeof trainingSpec>;
export type TrainingSpec = z.output<typeof trainingSpec>;
export type FeatureDef = z.output<typeof featureSpec>;
export type LabelDef = z.output<typeof labelSpec>;
export type SplitDef = z.output<typeof splitSpec>;
export type SliceDef = z.output<typeof sliceSpec>;
export type DatasetDef = z.output<typeof datasetSpec>;

/** The columns, features, label and split a run works with, once a preset is expanded. */
export interface Task {
  features: FeatureDef[];
  label: LabelDef;
  split: SplitDef;
  slices: SliceDef[];
}

export const PRESETS: Record<'flights-delay', Task> = {
  'flights-delay': {
    features: [
      { name: 'hour', kind: 'numeric', column: 'date', transform: 'hour' },
      { name: 'dayofweek', kind: 'numeric', column: 'date', transform: 'dayofweek' },
      { name: 'distance', kind: 'numeric' },
      { name: 'origin', kind: 'categorical' },
      { name: 'destination', kind: 'categorical' },
    ],
    label: { column: 'delay', greaterThan: 15 },
    split: { kind: 'time', column: 'date', testFraction: 0.2 },
    slices: [
      { feature: 'origin', top: 10 },
      { feature: 'hour', edges: [5, 11, 17] },
    ],
  },
};

export function resolveTask(spec: TrainingSpec): Task {
  const preset = spec.preset ? PRESETS[spec.preset] : undefined;
  const features = spec.features ?? preset!.features;
  return {
    features,
    label: spec.label ?? preset!.label,
    split: spec.split ?? preset?.split ?? { kind: 'random', seed: spec.seed, testFraction: 0.2 },
    slices: spec.evaluation.slices ?? preset?.slices ?? features.filter((f) => f.kind === 'categorical').slice(0, 3).map((f) => ({ feature: f.name, top: 5 })),
  };
}

/**
 * Slices that name no feature of the task, or one of the wrong kind: evaluation would skip them
 * and their gate would pass unevaluated. Apart from the schema so that runs started before the
 * check still parse their spec the same way on replay.
 */
export function sliceIssues(spec: TrainingSpec): string[] {
  const { features } = resolveTask(spec);
  return (spec.evaluation.slices ?? []).flatMap((slice, i) => {
    const at = `evaluation.slices.${i}.feature`;
    const f = features.find((x) => x.name === slice.feature);
    const want = slice.top !== undefined ? 'categorical' : 'numeric';
    if (!f) return [`${at}: ${slice.feature} is not a feature of this task (features: ${features.map((x) => x.name).join(', ')})`];
    if (f.kind !== want) return [`${at}: ${slice.feature} is ${f.kind}; ${slice.top !== undefined ? 'top' : 'edges'} slices a ${want} feature`];
    return [];
  });
}

/** Raw columns a task reads: they must exist in the data. */
export function requiredColumns(task: Task): string[] {
  const cols = new Set<string>();
  for (const f of task.features) cols.add(f.column ?? f.name);
  cols.add(task.label.column);
  if (task.split.kind === 'time') cols.add(task.split.column);
  return [...cols];
}

/** Fields a `resume` signal may override: the fix for what failed (OVERRIDE_FIELDS in step-fix.ts). */
export const resumeOverrides = z
  .object({
    dataset: datasetSpec.optional(),
    label: labelSpec.optional(),
    features: z.array(featureSpec).min(1).max(200).optional(),
    split: splitSpec.optional(),
    hyperparameters: z.record(z.string(), z.unknown()).optional(),
    sampleRows: z.number().int().min(100).max(100_000_000).optional(),
    gates: z.record(z.string(), z.unknown()).optional(),
    resources: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type ResumeOverrides = z.output<typeof resumeOverrides>;
