import { z } from 'zod';
import type { ArtifactStore } from '../../infra/artifacts';
import { loadTable } from '../data/prepare';
import { localArtifact, readVerified } from '../data/sources';
import type { FeatureSpec } from '../ml/dataset';
import type { TaskKind } from '../../workflows/contracts/training-spec';
import { createSession, scoreTable } from '../training/scoring';
import { baselineFromStats, type FeatureBaseline } from '../ml/monitoring/drift-check';

/**
 * What a monitoring check compares served traffic with, read from a model version's training
 * artifacts: the baseline statistics `prepare` wrote, a deterministic sample of the training
 * split (raw values for KS), and the model's own scores on a sample of its test split.
 */

/** Raw values for KS: enough for a KS statistic within ~0.005 of the full split's, small enough to keep per model. */
export const BASELINE_SAMPLE_ROWS = 100_000;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
export const artifactRef = z.object({ uri: z.string().min(1), sha256 });
export type ArtifactRef = z.infer<typeof artifactRef>;

/** The training artifacts a version's lineage (or its run's prepare step) points at. */
export const trainingRefs = z.object({ baseline: artifactRef, train: artifactRef, test: artifactRef });
export type TrainingRefs = z.infer<typeof trainingRefs>;

const baselineArtifact = z.object({
  kind: z.literal('training-baseline'),
  features: z.array(z.object({ name: z.string(), kind: z.enum(['numeric', 'categorical']) })),
  statistics: z.object({
    rows: z.number(),
    columns: z.array(
      z.object({
        name: z.string(),
        nulls: z.number(),
        edges: z.array(z.number()).optional(),
        selfHistogram: z.array(z.number()).optional(),
        categories: z.record(z.string(), z.number()).optional(),
      }),
    ),
  }),
});

/** Per-feature baselines: the full split's histograms and counts from `prepare`, raw sampled values for KS. */
export async function loadFeatureBaselines(artifacts: ArtifactStore, refs: TrainingRefs, features: FeatureSpec[]): Promise<{ baselines: Record<string, FeatureBaseline>; missing: string[] }> {
  const parsed = baselineArtifact.safeParse(JSON.parse((await readVerified(artifacts, refs.baseline)).toString('utf8')));
  if (!parsed.success) throw new Error(`training baseline ${refs.baseline.uri} is not a training-baseline artifact: ${parsed.error.issues[0]?.message}`);
  const stats = parsed.data.statistics;
  const numeric = features.filter((f) => f.kind === 'numeric');
  const sample = numeric.length ? await loadTable(await localArtifact(artifacts, refs.train, '.parquet'), numeric, undefined, { maxRows: BASELINE_SAMPLE_ROWS }) : undefined;
  const baselines: Record<string, FeatureBaseline> = {};
  const missing: string[] = [];
  for (const f of features) {
    const col = stats.columns.find((c) => c.name === f.name);
    const b = col ? baselineFromStats(f.kind, col, stats.rows, sample?.numeric[f.name]) : undefined;
    if (b) baselines[f.name] = b;
    else missing.push(f.name);
  }
  return { baselines, missing };
}

/** The model's scores (its task's output) on (a sample of) its test split, scored by onnxruntime as the server scores. */
export async function scoreTestSample(artifacts: ArtifactStore, model: ArtifactRef, test: ArtifactRef, features: FeatureSpec[], task: TaskKind = 'binary', maxRows = BASELINE_SAMPLE_ROWS): Promise<Float32Array> {
  const table = await loadTable(await localArtifact(artifacts, test, '.parquet'), features, undefined, { maxRows, task });
  const session = await createSession(await readVerified(artifacts, model));
  try {
    return await scoreTable(session, table, features);
  } finally {
    await session.release();
  }
}
