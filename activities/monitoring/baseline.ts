import { z } from 'zod';
import type { ArtifactStore } from '../../infra/artifacts';
import { ident, literal, withDuckDb } from '../data/duck';
import { LABEL_COLUMN } from '../data/prepare';
import { localArtifact, readVerified } from '../data/sources';
import type { FeatureSpec, Table } from '../training/dataset';
import { createSession, scoreTable } from '../training/scoring';
import { baselineFromStats, type FeatureBaseline } from './drift-check';

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

/**
 * A deterministic sample of a prepared split: every k-th row by file position, so the same
 * file always gives the same sample (DuckDB's reservoir sampling is not repeatable across threads).
 */
export async function readSplitSample(file: string, features: FeatureSpec[], maxRows: number): Promise<Table> {
  return withDuckDb(async (c) => {
    const src = `read_parquet(${literal(file)}, file_row_number = true)`;
    const total = Number((await c.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM read_parquet(${literal(file)})`)).getRowObjectsJson()[0]!.n);
    const step = Math.max(1, Math.ceil(total / maxRows));
    const cols = [...features.map((f) => ident(f.name)), LABEL_COLUMN].join(', ');
    const reader = await c.runAndReadAll(`SELECT ${cols} FROM ${src} WHERE file_row_number % ${step} = 0 ORDER BY file_row_number`);
    const columns = reader.getColumns();
    const rows = reader.currentRowCount;
    const table: Table = { rows, features, numeric: {}, categorical: {}, label: new Uint8Array(rows) };
    features.forEach((f, j) => {
      const values = columns[j]!;
      if (f.kind === 'numeric') table.numeric[f.name] = Float32Array.from(values, (v) => (v === null || v === undefined ? NaN : Number(v)));
      else table.categorical[f.name] = values.map((v) => (v === null || v === undefined ? '' : String(v)));
    });
    const label = columns[features.length]!;
    for (let i = 0; i < rows; i++) table.label[i] = Number(label[i]) ? 1 : 0;
    return table;
  });
}

/** Per-feature baselines: the full split's histograms and counts from `prepare`, raw sampled values for KS. */
export async function loadFeatureBaselines(artifacts: ArtifactStore, refs: TrainingRefs, features: FeatureSpec[]): Promise<{ baselines: Record<string, FeatureBaseline>; missing: string[] }> {
  const parsed = baselineArtifact.safeParse(JSON.parse((await readVerified(artifacts, refs.baseline)).toString('utf8')));
  if (!parsed.success) throw new Error(`training baseline ${refs.baseline.uri} is not a training-baseline artifact: ${parsed.error.issues[0]?.message}`);
  const stats = parsed.data.statistics;
  const numeric = features.filter((f) => f.kind === 'numeric');
  const sample = numeric.length ? await readSplitSample(await localArtifact(artifacts, refs.train, '.parquet'), numeric, BASELINE_SAMPLE_ROWS) : undefined;
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

/** The model's probabilities on (a sample of) its test split, scored by onnxruntime as the server scores. */
export async function scoreTestSample(artifacts: ArtifactStore, model: ArtifactRef, test: ArtifactRef, features: FeatureSpec[], maxRows = BASELINE_SAMPLE_ROWS): Promise<Float32Array> {
  const table = await readSplitSample(await localArtifact(artifacts, test, '.parquet'), features, maxRows);
  const session = await createSession(await readVerified(artifacts, model));
  try {
    return await scoreTable(session, table, features);
  } finally {
    await session.release();
  }
}
