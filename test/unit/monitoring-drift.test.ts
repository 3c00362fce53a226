import { readFileSync } from 'node:fs';
import path from 'node:path';
import { baselineFromStats, checkDrift, countCategories, performanceFigures, predictionFigures, profileBaseline, type CategoricalBaseline, type FeatureWindow, type NumericBaseline } from '../../activities/ml/monitoring/drift-check';
import { alignCategorical, psi } from '../../activities/ml/drift';
import { monitoringThresholds, type BinaryPerformance } from '../../workflows/contracts/lifecycle';

/** Reference values from numpy/scipy/sklearn: regenerate with `/usr/bin/python3 test/reference/monitoring_fixtures.py`. */
interface NumericCase {
  name: string;
  train: Array<number | null>;
  window: Array<number | null>;
  edges: number[];
  trainHist: number[];
  windowHist: number[];
  psi: number;
  js: number;
  ks: number;
  ksPValue: number;
  missingFraction: number;
  baselineMissingFraction: number;
}
interface CategoricalCase {
  name: string;
  trainCounts: Record<string, number>;
  windowCounts: Record<string, number>;
  psi: number;
  js: number;
  unseenFraction: number;
  missingFraction: number;
  baselineMissingFraction: number;
}
interface Fixtures {
  numeric: NumericCase[];
  categorical: CategoricalCase[];
  prediction: { baseline: number[]; window: number[]; psi: number; js: number; ks: number; mean: number; baselineMean: number };
  performance: { probs: number[]; labels: number[]; auc: number; logLoss: number; accuracy: number; positiveRate: number; meanPrediction: number };
}

const fx = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/reference/monitoring.json'), 'utf8')) as Fixtures;
const defaults = monitoringThresholds.parse({});
/** A window whose labels were read and none had arrived. */
const NO_LABELS = { scores: [], labels: [] };
const numericCase = (name: string) => fx.numeric.find((c) => c.name === name)!;
const categoricalCase = (name: string) => fx.categorical.find((c) => c.name === name)!;
const floats = (xs: Array<number | null>) => Float64Array.from(xs, (x) => (x === null ? NaN : x));

function expectClose(actual: number | null | undefined, expected: number, rel: number, label: string): void {
  const tol = rel * Math.abs(expected) + 1e-12;
  if (actual === undefined || actual === null || !(Math.abs(actual - expected) <= tol)) throw new Error(`${label}: got ${actual}, reference ${expected} (tolerance ${tol})`);
}

/** The baseline as the activity builds it: prepare's statistics (numpy's edges and counts here) plus the raw training values. */
function numericBaseline(c: NumericCase): NumericBaseline {
  const train = floats(c.train);
  const nulls = c.train.filter((v) => v === null).length;
  return baselineFromStats('numeric', { nulls, edges: c.edges, selfHistogram: c.trainHist }, c.train.length, train) as NumericBaseline;
}

function categoricalBaseline(c: CategoricalCase): CategoricalBaseline {
  const rows = Object.values(c.trainCounts).reduce((a, b) => a + b, 0);
  return baselineFromStats('categorical', { nulls: 0, categories: c.trainCounts }, rows) as CategoricalBaseline;
}

function categoricalWindow(counts: Record<string, number>): FeatureWindow {
  const { '': missing = 0, ...rest } = counts;
  return { kind: 'categorical', counts: rest, missing };
}

/** A window of distance + origin with the fixture's cases; rows = the numeric window's length. */
function twoFeatures(distance: string, origin: string, thresholds = defaults) {
  const d = numericCase(distance);
  const o = categoricalCase(origin);
  return checkDrift({
    labeled: NO_LABELS,
    thresholds,
    baseline: { distance: numericBaseline(d), origin: categoricalBaseline(o) },
    window: { rows: d.window.length, features: { distance: { kind: 'numeric', values: floats(d.window) }, origin: categoricalWindow(o.windowCounts) } },
    schema: { expected: ['distance', 'origin'], keyRows: { distance: d.window.length, origin: d.window.length } },
  });
}

describe('monitoring figures against numpy/scipy/sklearn', () => {
  test.each(fx.numeric.map((c) => [c.name, c] as const))('numeric %s: PSI, JS on the baseline deciles, KS statistic and p-value, missing fractions', (_, c) => {
    const r = checkDrift({ labeled: NO_LABELS, thresholds: defaults, baseline: { x: numericBaseline(c) }, window: { rows: c.window.length, features: { x: { kind: 'numeric', values: floats(c.window) } } } });
    const f = r.features.x!;
    expect(f.kind).toBe('numeric');
    expectClose(f.psi, c.psi, 1e-9, `${c.name} psi`);
    expectClose(f.js, c.js, 1e-9, `${c.name} js`);
    // D is a difference of counts over n: exact. The p-value goes through kstwo's series.
    expectClose(f.ks, c.ks, 1e-12, `${c.name} ks`);
    expectClose(f.ksPValue, c.ksPValue, 1e-6, `${c.name} ks p-value`);
    expectClose(f.missingFraction, c.missingFraction, 1e-12, `${c.name} missing`);
    expectClose(f.baselineMissingFraction, c.baselineMissingFraction, 1e-12, `${c.name} baseline missing`);
  });

  test('profiling raw training values gives numpy’s decile edges and counts', () => {
    for (const c of fx.numeric) {
      const b = profileBaseline({ kind: 'numeric', values: floats(c.train) }) as NumericBaseline;
      expect(b.edges.length).toBe(c.edges.length);
      b.edges.forEach((e, i) => expectClose(e, c.edges[i]!, 1e-12, `${c.name} edge ${i}`));
      expect(b.histogram).toEqual(c.trainHist);
    }
  });

  test.each(fx.categorical.map((c) => [c.name, c] as const))('categorical %s: PSI, JS on aligned categories, unseen and missing fractions', (_, c) => {
    const r = checkDrift({ labeled: NO_LABELS, thresholds: defaults, baseline: { origin: categoricalBaseline(c) }, window: { rows: 0, features: { origin: categoricalWindow(c.windowCounts) } } });
    const f = r.features.origin!;
    expect(f.kind).toBe('categorical');
    expectClose(f.psi, c.psi, 1e-9, `${c.name} psi`);
    expectClose(f.js, c.js, 1e-9, `${c.name} js`);
    expectClose(f.unseenFraction, c.unseenFraction, 1e-12, `${c.name} unseen`);
    expectClose(f.missingFraction, c.missingFraction, 1e-12, `${c.name} missing`);
    expectClose(f.baselineMissingFraction, c.baselineMissingFraction, 1e-12, `${c.name} baseline missing`);
    expect(f.ks).toBeUndefined();
  });

  test('a long tail of rare categories is one bucket: 500 rows like training stay under psiWarn, a shifted window does not', () => {
    const judge = (name: string) => {
      const c = categoricalCase(name);
      return checkDrift({ labeled: NO_LABELS, thresholds: defaults, baseline: { origin: categoricalBaseline(c) }, window: { rows: 500, features: { origin: categoricalWindow(c.windowCounts) } } });
    };
    const matched = judge('long-tail-matched');
    expect(matched.features.origin!.psi).toBeLessThan(defaults.psiWarn);
    expect(matched.level).toBe('ok');
    // Category by category (no bucket), sampling noise alone would be ~(K−1)/n.
    const c = categoricalCase('long-tail-matched');
    const { '': _, ...train } = c.trainCounts;
    const { p, q } = alignCategorical(train, c.windowCounts);
    expect(psi(p, q)).toBeGreaterThan(defaults.psiAct);
    expect(judge('long-tail-shifted').level).toBe('act');
  });

  test('countCategories treats null and the empty string as missing', () => {
    expect(countCategories(['ORD', '', null, 'ORD', 'SFO', undefined])).toEqual({ counts: { ORD: 2, SFO: 1 }, missing: 3 });
  });

  test('prediction drift on the baseline scores’ deciles', () => {
    const p = predictionFigures(fx.prediction.baseline, fx.prediction.window)!;
    expectClose(p.psi, fx.prediction.psi, 1e-9, 'prediction psi');
    expectClose(p.js, fx.prediction.js, 1e-9, 'prediction js');
    expectClose(p.ks, fx.prediction.ks, 1e-12, 'prediction ks');
    expectClose(p.mean, fx.prediction.mean, 1e-12, 'mean');
    expectClose(p.baselineMean, fx.prediction.baselineMean, 1e-12, 'baseline mean');
    // NaN marks another version's rows: they are skipped, not binned.
    const withOthers = Float64Array.from([...fx.prediction.window, NaN, NaN]);
    expect(predictionFigures(fx.prediction.baseline, withOthers)).toEqual(p);
  });

  test('performance equals sklearn', () => {
    const perf = performanceFigures(fx.performance.probs, fx.performance.labels, { auc: 0.7, logLoss: null });
    expectClose(perf.auc!, fx.performance.auc, 1e-12, 'auc');
    expectClose(perf.logLoss, fx.performance.logLoss, 1e-10, 'log loss');
    expectClose(perf.accuracy, fx.performance.accuracy, 1e-12, 'accuracy');
    expectClose(perf.positiveRate, fx.performance.positiveRate, 1e-12, 'positive rate');
    expectClose(perf.meanPrediction, fx.performance.meanPrediction, 1e-12, 'mean prediction');
    expect(perf.offlineAuc).toBe(0.7);
    expect(perf.offlineLogLoss).toBeNull();
  });
});

describe('monitoring verdict', () => {
  test('traffic like training: ok, no reasons', () => {
    const r = twoFeatures('distance-matched', 'origin-matched');
    expect(r.level).toBe('ok');
    expect(r.breach).toBe(false);
    expect(r.reasons).toEqual([]);
    expect(r.quality).toEqual({ missingInputs: [], unexpectedInputs: [], schemaChanged: false });
  });

  test('distance × 3 and a new airport: act, with reasons naming feature and figure', () => {
    const r = twoFeatures('distance-times-3', 'origin-shifted-unseen');
    expect(r.level).toBe('act');
    expect(r.breach).toBe(true);
    const d = numericCase('distance-times-3');
    expect(r.reasons).toContain(`distance PSI ${d.psi.toFixed(2)} ≥ 0.2`);
    expect(r.reasons).toContain(`distance KS ${d.ks.toFixed(2)} ≥ 0.2`);
    expect(r.reasons).toContain(`distance JS distance ${d.js.toFixed(2)} ≥ 0.2`);
    expect(r.reasons).toContain('origin unseen categories 10.0% > 5.0%');
    expect(r.reasons.some((s) => s.startsWith('origin PSI '))).toBe(true);
  });

  test('moderate shift: warn between psiWarn and psiAct', () => {
    const r = twoFeatures('distance-matched', 'origin-matched', { ...defaults, psiWarn: 0.005, jsAct: 0.9, ksAct: 0.9 });
    expect(r.level).toBe('warn');
    expect(r.breach).toBe(false);
    expect(r.reasons).toEqual(expect.arrayContaining([expect.stringMatching(/^distance PSI 0\.01 ≥ 0\.005$/), expect.stringMatching(/^origin PSI 0\.01 ≥ 0\.005$/)]));
  });

  test('more missing values than in training: act', () => {
    const c = numericCase('hour-integers-missing');
    const r = checkDrift({ labeled: NO_LABELS, thresholds: defaults, baseline: { hour: numericBaseline(c) }, window: { rows: c.window.length, features: { hour: { kind: 'numeric', values: floats(c.window) } } } });
    expect(r.level).toBe('act');
    expect(r.reasons).toContain('hour missing 12.5% vs 0.0% in training (+12.5% > 5.0%)');
  });

  test('few rows and few labels: insufficient-data, whatever the drift', () => {
    const r = twoFeatures('distance-times-3', 'origin-shifted-unseen', { ...defaults, minRows: 5000 });
    expect(r.level).toBe('insufficient-data');
    expect(r.breach).toBe(false);
    expect(r.reasons[0]).toBe('2000 rows (< 5000) and 0 labelled rows (< 200): no verdict');
    // The figures are still there, for whoever looks.
    expect(r.features.distance!.psi).toBeGreaterThan(1);
  });

  test('schema: an input missing from logged rows and an unexpected one', () => {
    const d = numericCase('distance-matched');
    const o = categoricalCase('origin-matched');
    const r = checkDrift({
      labeled: NO_LABELS,
      thresholds: defaults,
      baseline: { distance: numericBaseline(d), origin: categoricalBaseline(o) },
      window: { rows: d.window.length, features: { distance: { kind: 'numeric', values: floats(d.window) }, origin: categoricalWindow(o.windowCounts) } },
      schema: { expected: ['distance', 'origin'], keyRows: { distance: d.window.length, origin: d.window.length - 3, carrier: 10 } },
    });
    expect(r.quality).toEqual({ missingInputs: ['origin'], unexpectedInputs: ['carrier'], schemaChanged: true });
    expect(r.level).toBe('act');
    expect(r.reasons).toEqual(['schema: inputs missing from logged rows: origin', 'schema: unexpected inputs: carrier']);
  });

  test('prediction drift past predictionPsiAct: act', () => {
    const r = checkDrift({ labeled: NO_LABELS, thresholds: { ...defaults, minRows: 10, predictionPsiAct: 0.15 }, baseline: {}, window: { rows: fx.prediction.window.length, features: {} }, prediction: { baseline: fx.prediction.baseline, window: fx.prediction.window } });
    expect(r.level).toBe('act');
    expect(r.reasons).toEqual([`prediction PSI ${fx.prediction.psi.toFixed(2)} ≥ 0.15`]);
  });

  test('labels: performance figures equal sklearn’s; a drop from offline AUC acts, matching offline figures do not', () => {
    const { probs, labels } = fx.performance;
    const labeled = { scores: probs, labels };
    const window = { rows: 0, features: {} };
    const good = checkDrift({ thresholds: defaults, baseline: {}, window, labeled, offline: { auc: fx.performance.auc, logLoss: fx.performance.logLoss } });
    expect(good.level).toBe('ok');
    expect(good.labeledRows).toBe(probs.length);
    expectClose((good.performance as BinaryPerformance).auc!, fx.performance.auc, 1e-12, 'auc');
    expectClose((good.performance as BinaryPerformance).logLoss, fx.performance.logLoss, 1e-10, 'log loss');
    expectClose((good.performance as BinaryPerformance).accuracy, fx.performance.accuracy, 1e-12, 'accuracy');

    const decayed = checkDrift({ thresholds: defaults, baseline: {}, window, labeled, offline: { auc: fx.performance.auc + 0.1, logLoss: fx.performance.logLoss - 0.1 } });
    expect(decayed.level).toBe('act');
    expect(decayed.reasons).toEqual([
      `AUC ${fx.performance.auc.toFixed(2)} vs ${(fx.performance.auc + 0.1).toFixed(2)} offline (drop 0.10 > 0.05)`,
      `log loss ${fx.performance.logLoss.toFixed(2)} vs ${(fx.performance.logLoss - 0.1).toFixed(2)} offline (rise 0.10 > 0.05)`,
    ]);

    // Too few labels: figures, no verdict on them.
    const few = checkDrift({ thresholds: { ...defaults, minLabeledRows: 5000 }, baseline: {}, window, labeled, offline: { auc: 0.99, logLoss: 0.01 } });
    expect(few.level).toBe('insufficient-data');
    expect(few.performance).toBeDefined();
  });

  test('calibration gap on labelled rows', () => {
    const probs = new Float64Array(400).fill(0.1);
    const labels = Uint8Array.from({ length: 400 }, (_, i) => (i % 4 === 0 ? 1 : 0));
    const r = checkDrift({ thresholds: defaults, baseline: {}, window: { rows: 0, features: {} }, labeled: { scores: probs, labels } });
    expect(r.level).toBe('act');
    expect(r.reasons).toEqual(['calibration: positive rate 25.0% vs mean prediction 10.0% (gap 15.0% > 5.0%)']);
    expect((r.performance as BinaryPerformance).auc).toBe(0.5);
  });

  test('a figure that cannot be computed is null with its reason, and the window is not ok', () => {
    const d = numericCase('distance-matched');
    const allMissing = new Float64Array(d.window.length).fill(NaN);
    const r = checkDrift({
      labeled: NO_LABELS,
      thresholds: { ...defaults, minRows: 10, maxMissingIncrease: 1 },
      baseline: { distance: numericBaseline(d) },
      window: { rows: allMissing.length, features: { distance: { kind: 'numeric', values: allMissing } } },
    });
    const f = r.features.distance!;
    expect(f.psi).toBeNull();
    expect(f.js).toBeNull();
    expect(f.notComputed).toEqual({ psi: expect.stringMatching(/no value in the window/), js: expect.stringMatching(/no value in the window/) });
    // Stored as JSON, it stays null: no stand-in 0 that reads as "no drift".
    expect(JSON.parse(JSON.stringify(r)).features.distance.psi).toBeNull();
    expect(r.level).not.toBe('ok');
    expect(r.reasons).toContain('distance psi not computed: no value in the window (every row is missing it)');
  });
});
