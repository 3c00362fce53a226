import { heartbeat } from '@temporalio/activity';
import type { ArtifactStore } from '../../infra/artifacts';
import type { SliceDef } from '../../workflows/contracts/training-spec';
import { withDuckDb } from '../data/duck';
import { loadTable, type PreparedData } from '../data/prepare';
import { localArtifact, readVerified } from '../data/sources';
import type { ClassList, Table } from '../ml/dataset';
import { histogram, quantileEdges } from '../ml/drift';
import { predictLogreg, trainLogreg } from '../ml/logreg';
import { auc, binaryMetrics, logLoss, multiclassMetrics, regressionMetrics, type BinaryMetrics, type MulticlassMetrics, type RegressionMetrics } from '../ml/metrics';
import { dataError } from '../steps';
import type { ScoringDevice } from '../../infra/onnx-device';
import { scoreTable } from './scoring';
import { onCpu, type PlaceSession } from './scoring-device';
import type { ArtifactRef } from './train';

/**
 * The evaluate step: the exported ONNX model scored by onnxruntime on the test split — the
 * same runtime and graph that will serve — with overall metrics, slices, parity against the
 * trainer's own scores, and a linear baseline fitted on the same training split (logistic
 * regression for a binary task, ridge for a regression).
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

export interface RegressionSliceMetrics {
  slice: string;
  feature: string;
  rows: number;
  rmse: number;
  mae: number;
  meanPrediction: number;
  meanLabel: number;
}

/** What evaluate gives for a binary task (every run before there were kinds). */
export interface BinaryEvaluation {
  task?: undefined;
  metrics: BinaryMetrics;
  slices: SliceMetrics[];
  /** `scale`: what maxParityDiff is relative to (1 for probabilities; absent in runs evaluated before it). */
  parity?: { maxAbsDiff: number; rows: number; scale?: number };
  baseline: { trainer: 'logreg'; auc: number; logLoss: number };
  /** Where onnxruntime scored the test split (absent in runs evaluated before it was recorded). */
  scoredOn?: ScoringDevice;
  /** Prediction distribution on the test split (10 equal-width bins): serving compares with it. */
  predictionHistogram: number[];
  report: { uri: string; sha256: string; bytes?: number };
}

export interface RegressionEvaluation {
  task: 'regression';
  metrics: RegressionMetrics;
  slices: RegressionSliceMetrics[];
  /** `scale`: max(1, largest |trainer score|), since float32 rounding grows with the predictions' size. */
  parity?: { maxAbsDiff: number; rows: number; scale: number };
  baseline: { trainer: 'ridge'; rmse: number; mae: number };
  scoredOn?: ScoringDevice;
  /** Prediction counts on `predictionEdges` (the test predictions' deciles, drift.ts's bins): serving compares with it. */
  predictionHistogram: number[];
  predictionEdges: number[];
  report: { uri: string; sha256: string; bytes?: number };
}

export interface MulticlassSliceMetrics {
  slice: string;
  feature: string;
  rows: number;
  accuracy: number;
  macroF1: number;
  logLoss: number;
}

export interface MulticlassEvaluation {
  task: 'multiclass';
  classes: ClassList;
  metrics: MulticlassMetrics;
  slices: MulticlassSliceMetrics[];
  /** Over every class probability of every test row. */
  parity?: { maxAbsDiff: number; rows: number; scale: number };
  baseline: { trainer: 'logreg'; macroF1: number; logLoss: number; accuracy: number };
  scoredOn?: ScoringDevice;
  /** The training split's class shares as the prediction for every test row: the log loss a model must beat to have learned anything. */
  prior: { logLoss: number };
  /** Test rows predicted as each class (model order): serving compares with it. */
  predictionHistogram: number[];
  report: { uri: string; sha256: string; bytes?: number };
}

export type Evaluation = BinaryEvaluation | RegressionEvaluation | MulticlassEvaluation;

type PickEach<T, K extends keyof T> = T extends unknown ? Pick<T, K> : never;
/** What the gates read of an evaluation, still told apart by `task`. */
export type EvaluationFigures = PickEach<Exclude<Evaluation, MulticlassEvaluation>, 'task' | 'metrics' | 'slices' | 'parity' | 'baseline'> | Pick<MulticlassEvaluation, 'task' | 'metrics' | 'slices' | 'parity' | 'baseline' | 'prior'>;

export interface EvaluateInput {
  model: ArtifactRef;
  trainerScores?: ArtifactRef;
  data: Pick<PreparedData, 'train' | 'test' | 'features' | 'task' | 'classes'>;
  threshold: number;
  slices: SliceDef[];
}

function subset(values: ArrayLike<number>, rows: number[]): Float64Array {
  const out = new Float64Array(rows.length);
  rows.forEach((r, i) => (out[i] = values[r]!));
  return out;
}

/** Each slice's rows: top-k categories, or numeric buckets by upper edges (missing values in none). */
function sliceGroups(table: Table, slices: SliceDef[]): Array<{ def: SliceDef; groups: Map<string, number[]> }> {
  const out: Array<{ def: SliceDef; groups: Map<string, number[]> }> = [];
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
    out.push({ def, groups });
  }
  return out;
}

export function sliceMetrics(table: Table, probs: Float32Array, slices: SliceDef[], threshold: number): SliceMetrics[] {
  const out: SliceMetrics[] = [];
  for (const { def, groups } of sliceGroups(table, slices)) {
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

export function regressionSliceMetrics(table: Table, predictions: Float32Array, slices: SliceDef[]): RegressionSliceMetrics[] {
  const out: RegressionSliceMetrics[] = [];
  for (const { def, groups } of sliceGroups(table, slices)) {
    for (const [slice, rows] of groups) {
      if (!rows.length) continue;
      const m = regressionMetrics(subset(predictions, rows), subset(table.label, rows));
      out.push({ slice, feature: def.feature, rows: rows.length, rmse: m.rmse, mae: m.mae, meanPrediction: m.meanPrediction, meanLabel: m.meanLabel });
    }
  }
  return out;
}

async function scoreTest(artifacts: ArtifactStore, input: EvaluateInput, place: PlaceSession) {
  const features = input.data.features;
  const task = input.data.task ?? 'binary';
  const [trainPath, testPath] = [await localArtifact(artifacts, input.data.train, '.parquet'), await localArtifact(artifacts, input.data.test, '.parquet')];
  const as = { task, classes: input.data.classes } as const;
  const [train, test] = await withDuckDb(async (c) => [await loadTable(trainPath, features, c, as), await loadTable(testPath, features, c, as)] as const);
  const { session, ...scoredOn } = await place(await readVerified(artifacts, input.model));
  heartbeat({ stage: 'scoring', rows: test.rows, device: scoredOn.device });
  try {
    return { train, test, scores: await scoreTable(session, test, features), scoredOn };
  } catch (err) {
    // The exported graph lacks the task's output: the trained step's output is wrong, as with parity.
    throw dataError(`evaluate: ${err instanceof Error ? err.message : String(err)}; fix the trainer and start a new run`, { overrides: [] });
  } finally {
    await session.release();
  }
}

/** The trainer's scores against the ONNX ones: the largest difference, judged against `scale`. */
async function parityOf(artifacts: ArtifactStore, input: EvaluateInput, probs: Float32Array, relative: boolean): Promise<{ maxAbsDiff: number; rows: number; scale: number } | undefined> {
  if (!input.trainerScores) return undefined;
  const raw = await readVerified(artifacts, input.trainerScores);
  const own = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (own.length !== probs.length) {
    // The trained step's output itself is wrong: a resume re-runs evaluate on the same scores.
    throw dataError(`evaluate: the trainer's scores have ${own.length} rows, the test split ${probs.length}; fix the trainer and start a new run`, { overrides: [] });
  }
  let maxAbsDiff = 0;
  let largest = 0;
  for (let i = 0; i < own.length; i++) {
    // NaN on either side is a difference, never a match.
    const d = Math.abs(own[i]! - probs[i]!);
    maxAbsDiff = Number.isNaN(d) ? Infinity : Math.max(maxAbsDiff, d);
    largest = Math.max(largest, Math.abs(own[i]!));
  }
  return { maxAbsDiff, rows: own.length, scale: relative ? Math.max(1, largest) : 1 };
}

/** `place`: where the test split is scored (the CPU unless the step says otherwise); every figure is computed the same wherever. */
export async function evaluateModel(artifacts: ArtifactStore, input: EvaluateInput, place: PlaceSession = onCpu): Promise<Evaluation> {
  if (input.data.task === 'regression') return evaluateRegression(artifacts, input, place);
  if (input.data.task === 'multiclass') return evaluateMulticlass(artifacts, input, place);
  const { train, test, scores: probs, scoredOn } = await scoreTest(artifacts, input, place);
  const metrics = binaryMetrics(probs, test.label, input.threshold);
  const slices = sliceMetrics(test, probs, input.slices, input.threshold);
  const parity = await parityOf(artifacts, input, probs, false);

  heartbeat({ stage: 'baseline' });
  const baselineModel = trainLogreg(train);
  const baselineProbs = predictLogreg(baselineModel, test);
  const baseline = { trainer: 'logreg' as const, auc: auc(baselineProbs, test.label), logLoss: logLoss(baselineProbs, test.label) };

  const predictionHistogram = new Array<number>(10).fill(0);
  for (const p of probs) predictionHistogram[Math.min(9, Math.floor(p * 10))]!++;
  const full = { metrics, slices, parity, baseline, predictionHistogram, scoredOn };
  const put = await artifacts.putContent(JSON.stringify({ kind: 'evaluation', ...full }, null, 2), { mediaType: 'application/json' });
  return { ...full, report: { uri: put.uri, sha256: put.sha256, bytes: put.bytes } };
}

async function evaluateRegression(artifacts: ArtifactStore, input: EvaluateInput, place: PlaceSession): Promise<RegressionEvaluation> {
  const { train, test, scores, scoredOn } = await scoreTest(artifacts, input, place);
  const metrics = regressionMetrics(scores, test.label);
  const slices = regressionSliceMetrics(test, scores, input.slices);
  const parity = await parityOf(artifacts, input, scores, true);
  heartbeat({ stage: 'baseline' });
  const ridge = regressionMetrics(predictLogreg(trainLogreg(train), test), test.label);
  const predictionEdges = quantileEdges(scores, 10);
  const full = { task: 'regression' as const, metrics, slices, parity, baseline: { trainer: 'ridge' as const, rmse: ridge.rmse, mae: ridge.mae }, predictionHistogram: histogram(scores, predictionEdges), predictionEdges, scoredOn };
  const put = await artifacts.putContent(JSON.stringify({ kind: 'evaluation', ...full }, null, 2), { mediaType: 'application/json' });
  return { ...full, report: { uri: put.uri, sha256: put.sha256, bytes: put.bytes } };
}


/** Each slice's accuracy, macro-F1 and log loss on rows × k probabilities. */
export function multiclassSliceMetrics(table: Table, probs: Float32Array, slices: SliceDef[]): MulticlassSliceMetrics[] {
  const k = table.classes!.length;
  const out: MulticlassSliceMetrics[] = [];
  for (const { def, groups } of sliceGroups(table, slices)) {
    for (const [slice, rows] of groups) {
      if (!rows.length) continue;
      const p = new Float64Array(rows.length * k);
      rows.forEach((r, i) => p.set(probs.subarray(r * k, (r + 1) * k), i * k));
      const m = multiclassMetrics(p, subset(table.label, rows), k);
      out.push({ slice, feature: def.feature, rows: rows.length, accuracy: m.accuracy, macroF1: m.macroF1, logLoss: m.logLoss });
    }
  }
  return out;
}

async function evaluateMulticlass(artifacts: ArtifactStore, input: EvaluateInput, place: PlaceSession): Promise<MulticlassEvaluation> {
  const { train, test, scores, scoredOn } = await scoreTest(artifacts, input, place);
  const classes = input.data.classes!;
  const k = classes.length;
  const metrics = multiclassMetrics(scores, test.label, k);
  const slices = multiclassSliceMetrics(test, scores, input.slices);
  const parity = await parityOf(artifacts, input, scores, false);
  heartbeat({ stage: 'baseline' });
  const base = multiclassMetrics(predictLogreg(trainLogreg(train), test), test.label, k);
  const shares = new Array<number>(k).fill(0);
  for (const y of train.label) shares[y]! += 1 / train.rows;
  const prior = multiclassMetrics(Float64Array.from({ length: test.rows * k }, (_, j) => shares[j % k]!), test.label, k);
  const full = {
    task: 'multiclass' as const,
    classes,
    metrics,
    slices,
    parity,
    baseline: { trainer: 'logreg' as const, macroF1: base.macroF1, logLoss: base.logLoss, accuracy: base.accuracy },
    prior: { logLoss: prior.logLoss },
    predictionHistogram: metrics.perClass.map((c) => c.predicted),
    scoredOn,
  };
  const put = await artifacts.putContent(JSON.stringify({ kind: 'evaluation', ...full }, null, 2), { mediaType: 'application/json' });
  return { ...full, report: { uri: put.uri, sha256: put.sha256, bytes: put.bytes } };
}
