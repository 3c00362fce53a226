/**
 * Workflow bundle for the lifecycle tests and the monitor benchmark: the real lifecycle and
 * monitoring workflows with stand-in children (continuousTraining, promotion) that the test
 * controls — a training runs until the test sends `release`, so "during a training" is exact.
 */
import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import type { TrainingResult } from '../../workflows/continuous-training';
import type { PromotionInput, PromotionStatus } from '../../workflows/promotion';
import type { TrainingSpecInput } from '../../workflows/contracts/training-spec';

export { modelLifecycle } from '../../workflows/lifecycle';
export { monitoring } from '../../workflows/monitoring';

export interface Release {
  version: number;
  status?: 'registered' | 'rejected';
}
export const releaseSignal = defineSignal<[Release]>('release');
export const specQuery = defineQuery<TrainingSpecInput>('spec');

export async function continuousTraining(spec: TrainingSpecInput): Promise<TrainingResult> {
  let release: Release | undefined;
  setHandler(releaseSignal, (r) => void (release = r));
  setHandler(specQuery, () => spec);
  // An "auto" training (used by the benchmark) ends at once, rejected.
  const auto = (spec.hyperparameters as Record<string, unknown> | undefined)?.rounds === 1;
  if (auto) release = { version: 1, status: 'rejected' };
  await condition(() => release !== undefined);
  const r = release!;
  return {
    model: spec.model,
    version: r.version,
    modelVersionId: `mv-${r.version}`,
    status: r.status ?? 'registered',
    reasons: r.status === 'rejected' ? ['rejected by the test'] : [],
    metrics: { auc: 0.7, logLoss: 0.4, accuracy: 0.8, precision: 0.5, recall: 0.3, expectedCalibrationError: 0.01 },
    baselineAuc: 0.6,
    modelUri: 's3://fake/model.onnx',
    modelSha256: '0'.repeat(64),
    snapshotSha256: '0'.repeat(64),
    schemaVersion: 1,
    dataWarnings: [],
    resumedFromRound: 0,
  };
}

export async function promotion(input: PromotionInput): Promise<PromotionStatus> {
  return { model: input.model, candidate: input.version ?? 0, previous: null, stage: 'done', figures: {}, outcome: 'promoted' };
}
