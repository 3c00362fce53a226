import { heartbeat } from '@temporalio/activity';
import type { ArtifactStore } from '../../infra/artifacts';
import type { SliceDef } from '../../workflows/contracts/training-spec';
import { withDuckDb } from '../data/duck';
import { loadTable, type PreparedData } from '../data/prepare';
import { localArtifact, readVerified } from '../data/sources';
import type { Table } from '../ml/dataset';
import { predictLogreg, trainLogreg } from '../ml/logreg';
import { auc, binaryMetrics, logLoss, type BinaryMetrics } from '../ml/metrics';
import { dataError } from '../steps';
import { createSession, scoreTable } from './scoring';
import type { ArtifactRef } from './train';

/**
 * The evaluate step: the exported ONNX model scored by onnxruntime on the test split — the
 * same runtime and graph that will serve — with overall metrics, slices, parity against the
 * trainer's own scores, and a logistic-regression baseline fitted on the same training split.
 */

export interface SliceMetrics {
  slice: string;
  feature: string;
  rows: number;
  positives: number;
  auc: number | null;
  logLoss: number;
  accuracy: number;
  meanPrediction: number;
}

export interface Evaluation {
  metrics: BinaryMetrics;
  slices: SliceMetrics[];
  parity?: { maxAbsDiff: number; rows: number };
  baseline: { trainer: 'logreg'; auc: number; logLoss: number };
  /** Prediction distribution on the test split (10 equal-width bins): serving compares with it. */
  predictionHistogram: number[];
  report: { uri: string; sha256: string; bytes?: number };
}

export interface EvaluateInput {
  model: ArtifactRef;
  trainerScores?: ArtifactRef;
  data: Pick<PreparedData, 'train' | 'test' | 'features'>;
  threshold: number;
  slices: SliceDef[];
}

function subset(values: ArrayLike<number>, rows: number[]): Float64Array {
  const out = new Float64Array(rows.length);
  rows.forEach((r, i) => (out[i] = values[r]!));
  return out;
}

export function sliceMetrics(table: Table, probs: Float32Array, slices: SliceDef[], threshold: number): SliceMetrics[] {
  const out: SliceMetrics[] = [];
  for (const def of slices) {
    const groups = new Map<string, number[]>();
    if (def.top !== undefined) {
      const values = table.categorical[def.feature];
      if (!values) continue;
      const counts = new Map<string, number>();
      for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
      const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, def.top).map(([k]) => k);
      for (const k of top) groups.set(`${def.feature}=${k}`, []);
      values.forEach((v, i) => groups.get(`${def.feature}=${v}`)?.push(i));
    } else if (def.edges) {
      const values = table.numeric[def.feature];
      if (!values) continue;
      const edges = [...def.edges].sort((a, b) => a - b);
      const names = edges.map((e, k) => (k === 0 ? `${def.feature}≤${e}` : `${edges[k - 1]}<${def.feature}≤${e}`));
      names.push(`${def.feature}>${edges[edges.length - 1]}`);
      for (const n of names) groups.set(n, []);
      values.forEach((v, i) => {
        if (Number.isNaN(v)) return;
        let k = 0;
        while (k < edges.length && v > edges[k]!) k++;
        groups.get(names[k]!)!.push(i);
      });
    }
    for (const [slice, rows] of groups) {
      if (!rows.length) continue;
      const p = subset(probs, rows);
      const y = subset(table.label, rows);
      let positives = 0;
      let correct = 0;
      let sum = 0;
      for (let i = 0; i < rows.length; i++) {
        positives += y[i]!;
        correct += (p[i]! >= threshold ? 1 : 0) === y[i] ? 1 : 0;
        sum += p[i]!;
      }
      const a = auc(p, y);
      out.push({ slice, feature: def.feature, rows: rows.length, positives, auc: Number.isNaN(a) ? null : a, logLoss: logLoss(p, y), accuracy: correct / rows.length, meanPrediction: sum / rows.length });
    }
  }
  return out;
}

export async function evaluateModel(artifacts: ArtifactStore, input: EvaluateInput): Promise<Evaluation> {
  const features = input.data.features;
  const [trainPath, testPath] = [await localArtifact(artifacts, input.data.train, '.parquet'), await localArtifact(artifacts, input.data.test, '.parquet')];
  const [train, test] = await withDuckDb(async (c) => [await loadTable(trainPath, features, c), await loadTable(testPath, features, c)] as const);
  const session = await createSession(await readVerified(artifacts, input.model));
  heartbeat({ stage: 'scoring', rows: test.rows });
  const probs = await scoreTable(session, test, features);
  await session.release();
  const metrics = binaryMetrics(probs, test.label, input.threshold);
  const slices = sliceMetrics(test, probs, input.slices, input.threshold);

  let parity: Evaluation['parity'];
  if (input.trainerScores) {
    const raw = await readVerified(artifacts, input.trainerScores);
    const own = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    if (own.length !== probs.length) {
      // The trained step's output itself is wrong: a resume re-runs evaluate on the same scores.
      throw dataError(`evaluate: the trainer's scores have ${own.length} rows, the test split ${probs.length}; fix the trainer and start a new run`, { overrides: [] });
    }
    let maxAbsDiff = 0;
    for (let i = 0; i < own.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(own[i]! - probs[i]!));
    parity = { maxAbsDiff, rows: own.length };
  }

  heartbeat({ stage: 'baseline' });
  const baselineModel = trainLogreg(train);
  const baselineProbs = predictLogreg(baselineModel, test);
  const baseline = { trainer: 'logreg' as const, auc: auc(baselineProbs, test.label), logLoss: logLoss(baselineProbs, test.label) };

  const predictionHistogram = new Array<number>(10).fill(0);
  for (const p of probs) predictionHistogram[Math.min(9, Math.floor(p * 10))]!++;
  const full = { metrics, slices, parity, baseline, predictionHistogram };
  const put = await artifacts.putContent(JSON.stringify({ kind: 'evaluation', ...full }, null, 2), { mediaType: 'application/json' });
  return { ...full, report: { uri: put.uri, sha256: put.sha256, bytes: put.bytes } };
}

