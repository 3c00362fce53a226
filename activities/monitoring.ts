import { ApplicationFailure, activityInfo, heartbeat, log } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { ArtifactStore } from '../infra/artifacts';
import type { Database } from '../infra/db/schema';
import { getAlias, getModelByName, prepareStepOutputs, readLabeledClasses, readLabeledPredictions, readPredictionWindow, readServedClasses, upsertMonitoringCheck } from '../infra/db/repositories';
import { modelName, monitoringThresholds, type MonitoringCheckInput, type MonitoringReport } from '../workflows/contracts/lifecycle';
import { answerOfSignature, featuresOfSignature, taskOfSignature } from './training/scoring';
import { deriveTime, isDerived } from './ml/model-inputs';
import { TIME_TRANSFORMS } from '../workflows/contracts/training-spec';
import { loadFeatureBaselines, scoreTestSample, trainingRefs, type TrainingRefs } from './monitoring/baseline';
import { checkDrift, classCounts, labeledClasses, type FeatureBaseline, type FeatureWindow, type MulticlassWindow } from './ml/monitoring/drift-check';

/**
 * The monitoring check: one window of served traffic (and the labels that arrived) against the
 * production version's training baseline, written as one report row per (model, window). The
 * window comes from the workflow, so a retry recomputes and overwrites the same row.
 */

export interface MonitoringDeps {
  db: Kysely<Database>;
  artifacts: ArtifactStore;
}

const isoTime = z.iso.datetime({ offset: true });

export const monitoringCheckInput = z
  .object({ model: modelName, windowStart: isoTime, windowEnd: isoTime, labelsSince: isoTime, thresholds: monitoringThresholds })
  .strict()
  .refine((i) => Date.parse(i.windowStart) < Date.parse(i.windowEnd), { message: 'windowStart must be before windowEnd', path: ['windowStart'] })
  .refine((i) => Date.parse(i.labelsSince) <= Date.parse(i.windowEnd), { message: 'labelsSince must not be after windowEnd', path: ['labelsSince'] });

export const REPORT_KIND = 'check';

const signature = z.array(z.object({ name: z.string(), datatype: z.string(), derives: z.array(z.object({ name: z.string(), transform: z.enum(TIME_TRANSFORMS) })).optional() }));
const versionMetrics = z.object({
  auc: z.number().nullable().optional(),
  logLoss: z.number().nullable().optional(),
  rmse: z.number().nullable().optional(),
  mae: z.number().nullable().optional(),
  lineage: z.object({ baseline: z.unknown().optional(), train: z.unknown().optional(), test: z.unknown().optional() }).optional(),
});
/** Read apart from versionMetrics: a binary or regression version's figures must not depend on how these parse. */
const multiclassVersionMetrics = z.object({
  accuracy: z.number().nullable().optional(),
  macroF1: z.number().nullable().optional(),
  predictionHistogram: z.array(z.number()).optional(),
});

/** A few models' baselines per worker: re-reading a 100k-row sample and re-scoring the test split every period would dominate the check. */
function memo(limit: number) {
  const entries = new Map<string, Promise<unknown>>();
  return <T>(key: string, load: () => Promise<T>): Promise<T> => {
    let p = entries.get(key) as Promise<T> | undefined;
    if (!p) {
      p = load();
      entries.set(key, p);
      p.catch(() => entries.delete(key));
      if (entries.size > limit) entries.delete(entries.keys().next().value!);
    }
    return p;
  };
}

export function createMonitoringActivities(deps: MonitoringDeps) {
  const cached = memo(8);

  /** Baseline and splits: from the version's lineage, else from its training run's prepare step. */
  async function refsOf(metrics: z.infer<typeof versionMetrics>, trainingRunId: string | null): Promise<TrainingRefs | undefined> {
    const fromLineage = trainingRefs.safeParse(metrics.lineage ?? {});
    if (fromLineage.success) return fromLineage.data;
    if (!trainingRunId) return undefined;
    const fromStep = trainingRefs.safeParse(await prepareStepOutputs(deps.db, trainingRunId));
    return fromStep.success ? fromStep.data : undefined;
  }

  /** A multiclass version's window in its classes' terms: served classes, labelled rows, and what its metrics say of its test split. */
  async function multiclassWindow(
    outputs: unknown,
    rawMetrics: unknown,
    w: { modelId: string; modelVersionId: string; start: Date; since: Date; end: Date },
    step: <T>(name: string, fn: () => Promise<T>) => Promise<T>,
  ): Promise<{ window: MulticlassWindow; offline: { accuracy: number | null; macroF1: number | null } }> {
    // taskOfSignature said multiclass, so the signature has its classes.
    const classes = answerOfSignature(outputs)!.classes!;
    const parsed = multiclassVersionMetrics.safeParse(rawMetrics);
    const m = parsed.success ? parsed.data : {};
    const served = await step('read served classes', () => readServedClasses(deps.db, w));
    const labeled = await step('read labels', () => readLabeledClasses(deps.db, w));
    return {
      window: { classes, offlineHistogram: m.predictionHistogram, served: classCounts(served, classes), labeled: labeledClasses(labeled, classes) },
      offline: { accuracy: m.accuracy ?? null, macroF1: m.macroF1 ?? null },
    };
  }

  return {
    async monitoringCheck(raw: MonitoringCheckInput): Promise<MonitoringReport> {
      const parsed = monitoringCheckInput.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw ApplicationFailure.nonRetryable(`monitoringCheck: ${issue.path.join('.') || 'input'}: ${issue.message}`, 'InvalidInput');
      }
      const input = parsed.data;
      const t = input.thresholds;
      const [windowStart, windowEnd, labelsSince] = [new Date(input.windowStart), new Date(input.windowEnd), new Date(input.labelsSince)];
      const timings: Record<string, number> = {};
      let currentStep = 'start';
      const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
        currentStep = name;
        heartbeat({ step: name });
        const started = performance.now();
        try {
          return await fn();
        } finally {
          timings[name] = Math.round(performance.now() - started);
          log.info(`monitoring ${input.model}: ${name} took ${timings[name]} ms`);
        }
      };

      const model = await getModelByName(deps.db, input.model);
      if (!model) throw ApplicationFailure.nonRetryable(`model ${input.model} is not in the registry`, 'NotFound');
      const judge = async (): Promise<MonitoringReport> => {
        const write = async (report: Omit<MonitoringReport, 'reportId'>, modelVersionId: string | null): Promise<MonitoringReport> => {
          const reportId = await step('write report', () =>
            upsertMonitoringCheck(deps.db, { modelId: model.id, modelVersionId, kind: REPORT_KIND, windowStart, windowEnd, figures: report as unknown as Record<string, unknown>, breach: report.breach }),
          );
          log.info(`monitoring ${input.model} v${report.version}: ${report.level} on ${report.rows} rows, ${report.labeledRows} labelled (${JSON.stringify(timings)})`);
          return { reportId, ...report };
        };
        const base = { model: input.model, windowStart: input.windowStart, windowEnd: input.windowEnd };

        const production = await getAlias(deps.db, model.id, 'production');
        if (!production) {
          // Nothing serves yet: a normal state for a new model, not a failure worth retrying.
          return write(
            { ...base, version: 0, rows: 0, labeledRows: 0, level: 'insufficient-data', breach: false, reasons: [`model ${input.model} has no production version`], features: {}, quality: { missingInputs: [], unexpectedInputs: [], schemaChanged: false } },
            null,
          );
        }
        const mv = await deps.db.selectFrom('model_versions').selectAll().where('id', '=', production.model_version_id).executeTakeFirstOrThrow();
        const sig = signature.safeParse(mv.input_signature);
        if (!sig.success) throw ApplicationFailure.nonRetryable(`model ${input.model} v${mv.version}: its input signature is not a list of {name, datatype}`, 'InvalidSignature');
        const features = featuresOfSignature(sig.data);
        // A model whose output names no task this check can judge fails, recorded, rather than reading as healthy.
        const task = taskOfSignature(mv.output_signature);
        if (!task) throw ApplicationFailure.nonRetryable(`model ${input.model} v${mv.version}: its output signature names no task (${JSON.stringify(mv.output_signature)}); the monitoring check cannot tell what its scores are`, 'UnsupportedTask');
        const metrics = versionMetrics.safeParse(mv.metrics);
        const refs = await refsOf(metrics.success ? metrics.data : {}, mv.training_run_id);
        const notes: string[] = [];

        let baselines: Record<string, FeatureBaseline> = {};
        let baselineScores: Float32Array | undefined;
        if (refs) {
          const loaded = await step('baseline', () => cached(`features:${refs.baseline.sha256}:${refs.train.sha256}`, () => loadFeatureBaselines(deps.artifacts, refs, features)));
          baselines = loaded.baselines;
          if (loaded.missing.length) notes.push(`no training baseline for ${loaded.missing.join(', ')}: not checked for drift`);
          const onnx = mv.onnx_artifact_id ? await deps.db.selectFrom('artifacts').select(['uri', 'sha256']).where('id', '=', mv.onnx_artifact_id).executeTakeFirst() : undefined;
          // A multiclass version's prediction baseline is its test split's predicted classes, already in its metrics.
          if (onnx && task !== 'multiclass') baselineScores = await step('score test split', () => cached(`scores:${onnx.sha256}:${refs.test.sha256}`, () => scoreTestSample(deps.artifacts, onnx, refs.test, features, task)));
        } else {
          notes.push(`v${mv.version} has no training baseline in its lineage: ${task === 'multiclass' ? 'feature drift' : 'feature and prediction drift'} not checked`);
        }

        const window = await step('read window', () =>
          readPredictionWindow(deps.db, {
            modelId: model.id,
            modelVersionId: mv.id,
            start: windowStart,
            end: windowEnd,
            // A derived feature is read as its timestamp input and derived here as the graph did.
            numeric: sig.data.filter((i) => i.datatype !== 'BYTES').map((i) => i.name),
            categorical: features.filter((f) => f.kind === 'categorical').map((f) => f.name),
            task,
          }),
        );
        const range = { modelId: model.id, modelVersionId: mv.id, since: labelsSince, end: windowEnd };
        const labeled = task === 'multiclass' ? undefined : await step('read labels', () => readLabeledPredictions(deps.db, { ...range, task }));
        const multiclass = task === 'multiclass' ? await multiclassWindow(mv.output_signature, mv.metrics, { ...range, start: windowStart }, step) : undefined;

        const windowFeatures: Record<string, FeatureWindow> = {};
        for (const f of features) {
          if (isDerived(f)) windowFeatures[f.name] = { kind: 'numeric', values: window.numeric[f.column]!.map((e) => deriveTime(f.transform, e)) };
          else if (f.kind === 'numeric') windowFeatures[f.name] = { kind: 'numeric', values: window.numeric[f.name]! };
          else windowFeatures[f.name] = { kind: 'categorical', ...window.categorical[f.name]! };
        }
        const m = metrics.success ? metrics.data : {};
        const result = await step('drift', async () =>
          checkDrift({
            thresholds: t,
            baseline: baselines,
            window: { rows: window.rows, features: windowFeatures },
            // Prediction drift compares the production version with itself: canary rows carry NaN here.
            task,
            prediction: baselineScores ? { baseline: baselineScores, window: window.scores } : undefined,
            labeled,
            offline: { auc: m.auc ?? null, logLoss: m.logLoss ?? null, rmse: m.rmse ?? null, mae: m.mae ?? null, ...(multiclass ? multiclass.offline : {}) },
            multiclass: multiclass?.window,
            schema: { expected: sig.data.map((i) => i.name), keyRows: window.keyRows },
          }),
        );
        return write({ ...base, version: mv.version, ...result, reasons: [...result.reasons, ...notes] }, mv.id);
      };
      try {
        return await judge();
      } catch (err) {
        // The failure is part of the record: the window's row says which step failed and why.
        const message = err instanceof Error ? err.message : String(err);
        const info = activityInfo();
        await upsertMonitoringCheck(deps.db, {
          modelId: model.id,
          modelVersionId: null,
          kind: REPORT_KIND,
          windowStart,
          windowEnd,
          figures: { model: input.model, windowStart: input.windowStart, windowEnd: input.windowEnd, level: 'error', breach: false, rows: 0, labeledRows: 0, failedStep: currentStep, attempt: info.attempt, error: message, reasons: [`check failed at ${currentStep}: ${message}`] },
          breach: false,
        }).catch((writeErr: unknown) => log.warn(`monitoring ${input.model}: the error report could not be written either: ${writeErr instanceof Error ? writeErr.message : String(writeErr)}`));
        throw err;
      }
    },
  };
}

export type MonitoringCheckActivities = ReturnType<typeof createMonitoringActivities>;
