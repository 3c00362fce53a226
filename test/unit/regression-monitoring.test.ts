import { predictionShift } from '../../activities/deployment';
import { checkDrift } from '../../activities/ml/monitoring/drift-check';
import { regressionMetrics } from '../../activities/ml/metrics';
import { feedbackProblem, tasksOf } from '../../workers/serving/feedback';
import { monitoringThresholds, type RegressionPerformance } from '../../workflows/contracts/lifecycle';

/** Monitoring a regression once its labels arrive: RMSE and bias against the offline figures; feedback takes numbers only. */

const defaults = monitoringThresholds.parse({});
const window = { rows: 0, features: {} };

/** Predictions with a residual of known size and sign: y = ŷ + bias + noise·(±1). */
function labelled(n: number, bias: number, noise: number) {
  const scores = Float64Array.from({ length: n }, (_, i) => 100 + (i % 37));
  const labels = Float64Array.from(scores, (p, i) => p + bias + (i % 2 ? noise : -noise));
  return { scores, labels };
}

test('figures on labelled rows equal the metric definitions, and a matching window is ok', () => {
  const labeled = labelled(400, 0, 2);
  const r = checkDrift({ thresholds: defaults, baseline: {}, window, task: 'regression', labeled, offline: { auc: null, logLoss: null, rmse: 2, mae: 2 } });
  const m = regressionMetrics(labeled.scores, labeled.labels);
  expect(r.performance).toEqual({ task: 'regression', rmse: m.rmse, mae: m.mae, r2: m.r2, meanPrediction: m.meanPrediction, meanLabel: m.meanLabel, offlineRmse: 2, offlineMae: 2 });
  expect(r.performance).toMatchObject({ rmse: 2, mae: 2 });
  expect(r.level).toBe('ok');
  expect(r.reasons).toEqual([]);
});

test('RMSE decay past maxRmseIncrease acts; a bias past maxBiasRatio acts; neither reads probabilities', () => {
  const worse = checkDrift({ thresholds: defaults, baseline: {}, window, task: 'regression', labeled: labelled(400, 0, 2.5), offline: { auc: 0.9, logLoss: 0.1, rmse: 2, mae: 2 } });
  expect(worse.level).toBe('act');
  expect(worse.reasons).toEqual(['RMSE 2.5 vs 2 offline (+25.0% > 10.0%)']);

  const biased = checkDrift({ thresholds: { ...defaults, maxRmseIncrease: 1 }, baseline: {}, window, task: 'regression', labeled: labelled(400, 1.5, 0.5), offline: { auc: null, logLoss: null, rmse: 2, mae: 2 } });
  expect(biased.level).toBe('act');
  const p = biased.performance as RegressionPerformance;
  expect(p.meanLabel - p.meanPrediction).toBeCloseTo(1.5, 10);
  expect(biased.reasons).toEqual([`bias: mean label ${Number(p.meanLabel.toPrecision(5))} vs mean prediction ${Number(p.meanPrediction.toPrecision(5))} (0.75 × offline RMSE > 0.5)`]);

  // Too few labels: the figures, no verdict on them.
  const few = checkDrift({ thresholds: { ...defaults, minLabeledRows: 5000 }, baseline: {}, window, task: 'regression', labeled: labelled(400, 5, 5), offline: { auc: null, logLoss: null, rmse: 1 } });
  expect(few.level).toBe('insufficient-data');
  expect(few.performance).toMatchObject({ task: 'regression' });
});

test('without an offline RMSE there is no scale: a warning, never ok', () => {
  for (const rmse of [null, 0, undefined]) {
    const r = checkDrift({ thresholds: defaults, baseline: {}, window, task: 'regression', labeled: labelled(400, 3, 3), offline: { auc: null, logLoss: null, rmse } });
    expect(r.level).toBe('warn');
    expect(r.reasons[0]).toMatch(/^no offline RMSE for this version \((absent|0)\): RMSE 4\.2426 on 400 labelled rows not judged$/);
  }
});

test('feedback takes the label type of the model’s task, naming the first label that does not fit', () => {
  const regression = tasksOf([[{ name: 'prediction', datatype: 'FP32' }]]);
  const binary = tasksOf([[{ name: 'probability', datatype: 'FP32' }], []]);
  expect(regression).toEqual([{ task: 'regression' }]);
  expect(binary).toEqual([{ task: 'binary' }]);
  const labels = (...ys: Array<number | boolean | string>) => ys.map((label, i) => ({ request_id: `r${i}`, label }));
  expect(feedbackProblem(labels(3.5, -2, 0), regression, true)).toBeUndefined();
  expect(feedbackProblem(labels(3.5, '12', 0), regression, true)).toBe('invalid feedback: labels.1.label: "12" is not a label this model takes; expected a finite number (regression)');
  expect(feedbackProblem(labels(true), regression, false)).toBe('invalid feedback: label: true is not a label this model takes; expected a finite number (regression)');
  expect(feedbackProblem(labels(0, 1, true, false), binary, true)).toBeUndefined();
  expect(feedbackProblem(labels(1, 0.5), binary, true)).toBe('invalid feedback: labels.1.label: 0.5 is not a label this model takes; expected 0, 1, false or true (binary)');
  expect(feedbackProblem(labels('yes'), binary, false)).toMatch(/^invalid feedback: label: "yes" is not a label/);
  // A model with versions of both tasks takes a label either can judge.
  const both = [...binary, ...regression];
  expect(feedbackProblem(labels(1, 7.25), both, true)).toBeUndefined();
  expect(feedbackProblem(labels('x'), both, false)).toBe('invalid feedback: label: "x" is not a label this model takes; expected 0, 1, false or true (binary) or a finite number (regression)');
});

test('the canary prediction shift: a missing score counts in no bin (not as 0), and scores that give no figure give null', () => {
  const rows = (ps: Array<number | null>) => ps.map((p) => ({ p, y: null }));
  const stable = rows(Array.from({ length: 200 }, (_, i) => 0.05 + (i % 10) / 10));
  // Half the candidate's scores missing: read as 0 they would fill the lowest bin and shift it.
  const candidate = rows(Array.from({ length: 200 }, (_, i) => (i % 2 ? null : 0.05 + (Math.floor(i / 2) % 10) / 10)));
  expect(predictionShift('binary', stable, candidate)).toBeLessThan(0.05);
  expect(predictionShift('binary', stable, rows([null, null]))).toBeNull();
  expect(predictionShift('regression', rows([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), rows([null]))).toBeNull();
  expect(predictionShift('regression', rows(Array.from({ length: 100 }, (_, i) => i)), rows(Array.from({ length: 100 }, (_, i) => i + 1000)))).toBeGreaterThan(1);
});

test('labelled scores and labels of different lengths are refused, not paired', () => {
  expect(() => checkDrift({ thresholds: defaults, baseline: {}, window, task: 'regression', labeled: { scores: [1, 2, 3], labels: [1, 2] }, offline: { auc: null, logLoss: null, rmse: 1 } })).toThrow('checkDrift: 3 labelled scores for 2 labels');
  // No read of labels is no evidence: it fails, where an empty read gets no verdict.
  expect(() => checkDrift({ thresholds: defaults, baseline: {}, window, task: 'regression', offline: { auc: null, logLoss: null, rmse: 1 } })).toThrow('checkDrift: no labelled predictions were read');
  expect(() => checkDrift({ thresholds: defaults, baseline: {}, window, task: 'multiclass', labeled: { scores: [], labels: [] } })).toThrow(/a multiclass check needs its window/);
});
