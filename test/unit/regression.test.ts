import { exportGbdtOnnx, predictGbdt, trainGbdt } from '../../activities/ml/gbdt';
import { exportLogregOnnx, predictLogreg, trainLogreg } from '../../activities/ml/logreg';
import { regressionMetrics } from '../../activities/ml/metrics';
import { regressionChecks, type Gates } from '../../activities/training/gates';
import type { RegressionEvaluation } from '../../activities/training/evaluate';
import { histogram, quantileEdges } from '../../activities/ml/drift';
import { createSession, scoreTable, signatureProblems } from '../../activities/training/scoring';
import type { Table } from '../../activities/ml/dataset';
import { syntheticRegression } from '../helpers/synthetic-regression';

const GATES: Gates = { minAuc: 0.55, maxRegression: 0.005, minSliceRows: 500, latencyBudgetMs: 20, maxParityDiff: 1e-4, maxBaselineLoss: 0, onIncomparableChampion: 'reject' };

function std(y: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < y.length; i++) m += y[i]!;
  m /= y.length;
  let s = 0;
  for (let i = 0; i < y.length; i++) s += (y[i]! - m) ** 2;
  return Math.sqrt(s / y.length);
}

async function onnxScores(onnx: Uint8Array, table: Table): Promise<{ scores: Float32Array; problems: string[]; outputs: readonly string[] }> {
  const session = await createSession(onnx);
  try {
    return { scores: await scoreTable(session, table, table.features), problems: signatureProblems(session, table.features, 'regression'), outputs: session.outputNames };
  } finally {
    await session.release();
  }
}

test('regression metrics equal their definitions (sklearn mean_squared_error, mean_absolute_error, r2_score)', () => {
  const m = regressionMetrics([1, 2, 3], [1, 3, 5]);
  expect(m.rmse).toBeCloseTo(Math.sqrt(5 / 3), 12);
  expect(m.mae).toBeCloseTo(1, 12);
  expect(m.r2).toBeCloseTo(1 - 5 / 8, 12);
  expect(regressionMetrics([2, 2], [3, 3]).r2).toBeNaN();
  // The bins a regression's predictions are counted on (evaluate's predictionEdges).
  expect(histogram([1, 2, 3, 4, NaN], [1, 3])).toEqual([1, 2, 1]);
  expect(quantileEdges([5, 5, 5], 10)).toEqual([5]);
});

test('GBDT regression (squared error): beats the mean, and its ONNX graph gives output prediction equal to the trainer, same bytes for the same seed', async () => {
  const train = syntheticRegression(6000, 1, { offset: 500 });
  const test = syntheticRegression(2000, 2, { offset: 500 });
  const params = { rounds: 60, maxDepth: 4, learningRate: 0.2 };
  const model = trainGbdt(train, params);
  expect(model.task).toBe('regression');
  const own = predictGbdt(model, test);
  const m = regressionMetrics(own, test.label);
  // Noise alone leaves an RMSE of about 5 against a spread of about 40.
  expect(m.rmse).toBeLessThan(0.25 * std(test.label));
  expect(m.r2).toBeGreaterThan(0.9);
  const onnx = exportGbdtOnnx(model);
  const { scores, problems, outputs } = await onnxScores(onnx, test);
  expect(outputs).toEqual(['prediction']);
  expect(problems).toEqual([]);
  let worst = 0;
  for (let i = 0; i < test.rows; i++) worst = Math.max(worst, Math.abs(scores[i]! - own[i]!) / Math.max(1, Math.abs(own[i]!)));
  expect(worst).toBeLessThan(1e-5);
  expect(Buffer.compare(exportGbdtOnnx(trainGbdt(train, params)), onnx)).toBe(0);
  // Threads change nothing: the same bytes on two threads.
  expect(Buffer.compare(exportGbdtOnnx(trainGbdt(train, params, { threads: 2 })), onnx)).toBe(0);
});

test('ridge regression recovers a linear target, and its ONNX graph (no sigmoid) equals the trainer', async () => {
  const t = syntheticRegression(3000, 3);
  // y = 4·x1 − 2·hour + 7 + a category offset: linear in the features and the category's mean.
  const y = new Float64Array(t.rows);
  for (let i = 0; i < t.rows; i++) y[i] = 4 * t.numeric.x1![i]! - 2 * t.numeric.hour![i]! + 7 + (t.categorical.origin![i] === 'C0' ? 30 : 0);
  const table: Table = { ...t, label: y };
  const model = trainLogreg(table, { l2: 0, smoothing: 0 });
  expect(model.task).toBe('regression');
  const own = predictLogreg(model, table);
  // Not exactly 1: a category's code is its mean target, which carries a little of the numeric effects.
  expect(regressionMetrics(own, y).r2).toBeGreaterThan(0.995);
  const { scores, outputs } = await onnxScores(exportLogregOnnx(model), table);
  expect(outputs).toEqual(['prediction']);
  for (let i = 0; i < table.rows; i += 97) expect(Math.abs(scores[i]! - own[i]!)).toBeLessThan(1e-3 * Math.max(1, Math.abs(own[i]!)));
});

test('a binary graph scored as a regression is refused, naming the output it lacks', async () => {
  const t = syntheticRegression(500, 4);
  const binary = trainGbdt({ ...t, task: undefined, label: Uint8Array.from(t.label, (v) => (v > 0 ? 1 : 0)) }, { rounds: 3, maxDepth: 2 });
  const session = await createSession(exportGbdtOnnx(binary));
  try {
    await expect(scoreTable(session, t, t.features)).rejects.toThrow(/no output prediction \(a regression task's\); it gives probability/);
    expect(signatureProblems(session, t.features, 'regression')).toEqual([expect.stringMatching(/output prediction is missing/)]);
  } finally {
    await session.release();
  }
});

function evaluation(over: Partial<RegressionEvaluation['metrics']> = {}, baselineRmse = 10, slices: RegressionEvaluation['slices'] = []): RegressionEvaluation {
  return {
    task: 'regression',
    metrics: { rows: 1000, rmse: 8, mae: 6, r2: 0.5, meanPrediction: 0, meanLabel: 0, ...over },
    slices,
    baseline: { trainer: 'ridge', rmse: baselineRmse, mae: 8 },
    predictionHistogram: [],
    predictionEdges: [],
    report: { uri: 's3://b/k', sha256: 'x' },
  };
}

function judge(e: RegressionEvaluation, gates: Partial<Gates> = {}) {
  const checks: Array<{ gate: string; ok: boolean }> = [];
  regressionChecks(e, { ...GATES, ...gates }, (gate, ok) => checks.push({ gate, ok }));
  return checks;
}

test('regression gates: R² above minR2, no worse than ridge, maxRmse and slices; a figure that is not finite fails', () => {
  expect(judge(evaluation()).every((c) => c.ok)).toBe(true);
  expect(judge(evaluation({ r2: -0.1 }))).toContainEqual({ gate: 'min-r2', ok: false });
  expect(judge(evaluation({ r2: NaN }))).toContainEqual({ gate: 'min-r2', ok: false });
  expect(judge(evaluation({ rmse: 11 }))).toContainEqual({ gate: 'vs-baseline ridge', ok: false });
  expect(judge(evaluation({ rmse: 11 }), { maxBaselineLoss: 0.2 })).toContainEqual({ gate: 'vs-baseline ridge', ok: true });
  expect(judge(evaluation({ rmse: NaN }))).toContainEqual({ gate: 'vs-baseline ridge', ok: false });
  expect(judge(evaluation(), { maxRmse: 7 })).toContainEqual({ gate: 'max-rmse', ok: false });
  expect(judge(evaluation(), { minR2: 0.6 })).toContainEqual({ gate: 'min-r2', ok: false });
  // A slice gate that judged no slice has no evidence.
  expect(judge(evaluation(), { maxSliceRmse: 9 })).toContainEqual({ gate: 'slice-rmse', ok: false });
  const slices = [{ slice: 'origin=C1', feature: 'origin', rows: 600, rmse: 12, mae: 9, meanPrediction: 0, meanLabel: 0 }];
  expect(judge(evaluation({}, 10, slices), { maxSliceRmse: 9 })).toContainEqual({ gate: 'slice-rmse origin=C1', ok: false });
});
