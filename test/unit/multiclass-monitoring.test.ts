import { checkDrift, classCounts, classPredictionFigures, labeledClasses, multiclassRow, type DriftCheckInput } from '../../activities/ml/monitoring/drift-check';
import { multiclassMetrics } from '../../activities/ml/metrics';
import { monitoringThresholds, type ClassPredictionFigures, type MulticlassPerformance } from '../../workflows/contracts/lifecycle';

/** Monitoring a multiclass version: served classes' shares against its test split's, accuracy against its offline accuracy. */

const defaults = monitoringThresholds.parse({});
const CLASSES = ['bike', 'bus', 'car', 'train'];
/** The version's test rows per predicted class, as evaluate writes `predictionHistogram`. */
const OFFLINE = [400, 300, 200, 100];
const offline = { auc: null, logLoss: 0.4, accuracy: 0.9, macroF1: 0.88 };
const none = { probabilities: new Float64Array(0), labels: new Int32Array(0), skipped: 0 };

/** (logged label → rows) as readServedClasses gives them. */
const served = (counts: number[], extra: Array<{ label: unknown; n: number }> = []) => [...counts.map((n, c) => ({ label: CLASSES[c], n })), ...extra];

function input(over: Partial<DriftCheckInput['multiclass']> & { rows?: number } = {}): DriftCheckInput {
  const { rows = 0, ...mc } = over;
  return { thresholds: defaults, baseline: {}, window: { rows, features: {} }, task: 'multiclass', offline, multiclass: { classes: CLASSES, offlineHistogram: OFFLINE, served: { counts: [0, 0, 0, 0], outside: 0 }, labeled: none, ...mc } };
}

/** PSI written out (proportions floored at 1e-4, as drift.ts documents), so the test does not read the code it checks. */
function psiByHand(expected: number[], actual: number[]): number {
  const te = expected.reduce((a, b) => a + b, 0);
  const ta = actual.reduce((a, b) => a + b, 0);
  return expected.reduce((s, e, i) => {
    const p = Math.max(e / te, 1e-4);
    const q = Math.max(actual[i]! / ta, 1e-4);
    return s + (q - p) * Math.log(q / p);
  }, 0);
}

/**
 * `n` labelled rows, the true class cycling through the classes; the first `right` of every 100
 * rows predicted right (0.7 on the true class), the others on the next class.
 */
function labelledRows(n: number, right: number): Array<{ probabilities: unknown; label: unknown }> {
  return Array.from({ length: n }, (_, i) => {
    const y = i % 4;
    const predicted = i % 100 < right ? y : (y + 1) % 4;
    return { probabilities: CLASSES.map((_, c) => (c === predicted ? 0.7 : 0.1)), label: CLASSES[y] };
  });
}

describe('prediction drift: the served classes’ shares against the test split’s', () => {
  test('served shares like the offline histogram: a low PSI, and the window is ok', () => {
    const counts = [410, 290, 205, 95];
    const r = checkDrift(input({ rows: 1000, served: classCounts(served(counts), CLASSES) }));
    const p = r.prediction as ClassPredictionFigures;
    expect(p.task).toBe('multiclass');
    expect(p.psi).toBeCloseTo(psiByHand(OFFLINE, counts), 12);
    expect(p.psi!).toBeLessThan(0.01);
    expect(p.js!).toBeLessThan(0.05);
    expect(p).toMatchObject({ classes: CLASSES, rows: 1000, outsideClasses: 0, shares: [0.41, 0.29, 0.205, 0.095], baselineShares: [0.4, 0.3, 0.2, 0.1] });
    expect(p.notComputed).toBeUndefined();
    expect(r.level).toBe('ok');
    expect(r.reasons).toEqual([]);
  });

  test('shifted shares: PSI over predictionPsiAct acts, at the other tasks’ thresholds', () => {
    const counts = [100, 100, 200, 600];
    const r = checkDrift(input({ rows: 1000, served: classCounts(served(counts), CLASSES) }));
    const want = psiByHand(OFFLINE, counts);
    expect(want).toBeGreaterThan(defaults.predictionPsiAct);
    expect(r.prediction!.psi).toBeCloseTo(want, 12);
    expect(r.level).toBe('act');
    expect(r.breach).toBe(true);
    expect(r.reasons).toEqual([`prediction PSI ${want.toFixed(2)} ≥ 0.2`]);
    // Between psiWarn and predictionPsiAct: a warning.
    const mild = checkDrift(input({ rows: 1000, served: classCounts(served([250, 300, 250, 200]), CLASSES) }));
    expect(mild.prediction!.psi!).toBeGreaterThanOrEqual(defaults.psiWarn);
    expect(mild.prediction!.psi!).toBeLessThan(defaults.predictionPsiAct);
    expect(mild.level).toBe('warn');
    expect(mild.reasons).toEqual(['prediction PSI 0.15 ≥ 0.1']);
    // Too thin a window: the figure, no verdict.
    expect(checkDrift(input({ rows: 100, served: classCounts(served([10, 10, 20, 60]), CLASSES) })).level).toBe('insufficient-data');
  });

  test('a logged label that is none of the classes counts in no bin', () => {
    const counts = [410, 290, 205, 95];
    const odd = [{ label: 'plane', n: 300 }, { label: null, n: 5 }, { label: 'Bus', n: 7 }];
    const c = classCounts(served(counts, odd), CLASSES);
    expect(c).toEqual({ counts, outside: 312 });
    const p = classPredictionFigures(OFFLINE, c, CLASSES)!;
    expect(p.psi).toBeCloseTo(psiByHand(OFFLINE, counts), 12);
    expect(p).toMatchObject({ rows: 1000, outsideClasses: 312 });
    // Integer classes: the string "3" is not the class 3, as feedback has it.
    expect(classCounts([{ label: 3, n: 4 }, { label: '3', n: 2 }, { label: 1, n: 1 }], [1, 3])).toEqual({ counts: [1, 4], outside: 2 });
    // Only rows outside the classes: nothing to compare, said so.
    const outside = classPredictionFigures(OFFLINE, { counts: [0, 0, 0, 0], outside: 9 }, CLASSES)!;
    expect(outside).toMatchObject({ psi: null, js: null, notComputed: { psi: 'no served row of this version has a label among its classes' } });
    expect(classPredictionFigures(OFFLINE, { counts: [0, 0, 0, 0], outside: 0 }, CLASSES)).toBeUndefined();
  });

  test('without a usable offline histogram the figure is not computed, named, and the window is not ok', () => {
    const c = classCounts(served([410, 290, 205, 95]), CLASSES);
    const missing = checkDrift(input({ rows: 1000, served: c, offlineHistogram: undefined }));
    const why = 'the version has no offline prediction histogram (its test rows per predicted class)';
    expect(missing.prediction).toMatchObject({ psi: null, js: null, baselineShares: null, rows: 1000, notComputed: { psi: why, js: why } });
    expect(missing.level).toBe('warn');
    expect(missing.reasons).toEqual([`prediction psi not computed: ${why}`, `prediction js not computed: ${why}`]);
    // A binary-style histogram (10 probability bins) is not one count per class.
    const tenBins = classPredictionFigures([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], c, CLASSES)!;
    expect(tenBins.notComputed).toEqual({ psi: 'the offline prediction histogram has 10 bins for 4 classes', js: 'the offline prediction histogram has 10 bins for 4 classes' });
    expect(classPredictionFigures([0, 0, 0, 0], c, CLASSES)!.notComputed!.psi).toBe('the offline prediction histogram counts no rows');
    expect(classPredictionFigures([1, -1, 1, 1], c, CLASSES)!.psi).toBeNull();
  });
});

describe('performance once labels arrive: accuracy against the offline accuracy', () => {
  test('figures equal multiclassMetrics of the labelled rows; accuracy near offline is ok', () => {
    const rows = labelledRows(400, 88);
    const labeled = labeledClasses(rows, CLASSES);
    const r = checkDrift(input({ labeled }));
    const m = multiclassMetrics(labeled.probabilities, labeled.labels, 4);
    expect(m.accuracy).toBeCloseTo(0.88, 12);
    expect(r.labeledRows).toBe(400);
    expect(r.performance).toEqual({ task: 'multiclass', accuracy: m.accuracy, macroF1: m.macroF1, logLoss: m.logLoss, offlineAccuracy: 0.9, offlineMacroF1: 0.88, offlineLogLoss: 0.4, skippedRows: 0 });
    expect(r.performance).toMatchObject({ logLoss: expect.closeTo(-(0.88 * Math.log(0.7) + 0.12 * Math.log(0.1)), 12) });
    expect(r.level).toBe('ok');
    expect(r.reasons).toEqual([]);
  });

  test('accuracy far below offline: a breach whose reason names accuracy', () => {
    const r = checkDrift(input({ labeled: labeledClasses(labelledRows(400, 50), CLASSES) }));
    expect((r.performance as MulticlassPerformance).accuracy).toBeCloseTo(0.5, 12);
    expect(r.level).toBe('act');
    expect(r.breach).toBe(true);
    expect(r.reasons).toEqual(['accuracy 0.50 vs 0.90 offline (drop 0.40 > 0.05)']);
    // maxAccuracyDrop is the rule: loosened past the drop, no breach.
    expect(checkDrift({ ...input({ labeled: labeledClasses(labelledRows(400, 50), CLASSES) }), thresholds: { ...defaults, maxAccuracyDrop: 0.45 } }).level).toBe('ok');
    // Too few labels: the figures, no verdict.
    const few = checkDrift(input({ labeled: labeledClasses(labelledRows(100, 0), CLASSES) }));
    expect(few.level).toBe('insufficient-data');
    expect(few.performance).toMatchObject({ task: 'multiclass', accuracy: 0 });
  });

  test('no offline accuracy: reported, not judged, and the reason says so', () => {
    const r = checkDrift({ ...input({ labeled: labeledClasses(labelledRows(400, 10), CLASSES) }), offline: { auc: null, logLoss: null } });
    expect(r.performance).toMatchObject({ task: 'multiclass', accuracy: expect.closeTo(0.1, 12), offlineAccuracy: null, offlineMacroF1: null, offlineLogLoss: null });
    expect(r.level).toBe('warn');
    expect(r.breach).toBe(false);
    expect(r.reasons).toEqual(['no offline accuracy for this version: accuracy 0.10 on 400 labelled rows not judged']);
  });

  test('a labelled row whose label is none of the classes, or whose probabilities are not k numbers, is skipped', () => {
    const good = labelledRows(400, 50);
    const bad = [
      { probabilities: [0.7, 0.1, 0.1, 0.1], label: 'plane' },
      { probabilities: [0.7, 0.1, 0.1, 0.1], label: null },
      { probabilities: [0.7, 0.1, 0.1, 0.1], label: 0 },
      { probabilities: [0.7, 0.3], label: 'bike' },
      { probabilities: [0.7, null, 0.1, 0.1], label: 'bike' },
      { probabilities: null, label: 'bike' },
    ];
    const labeled = labeledClasses([...bad.slice(0, 3), ...good, ...bad.slice(3)], CLASSES);
    expect(labeled.skipped).toBe(6);
    expect(Array.from(labeled.labels)).toEqual(good.map((r) => CLASSES.indexOf(r.label as string)));
    const r = checkDrift(input({ labeled }));
    expect(r.labeledRows).toBe(400);
    const alone = checkDrift(input({ labeled: labeledClasses(good, CLASSES) })).performance as MulticlassPerformance;
    expect(r.performance).toEqual({ ...alone, skippedRows: 6 });
    expect(r.performance).toMatchObject({ accuracy: expect.closeTo(0.5, 12) });
    expect(r.reasons).toEqual(['accuracy 0.50 vs 0.90 offline (drop 0.40 > 0.05)']);
    // Only unreadable labels: no labelled rows, so no performance and no verdict on it.
    const only = checkDrift(input({ labeled: labeledClasses(bad, CLASSES) }));
    expect(only).toMatchObject({ labeledRows: 0, level: 'insufficient-data' });
    expect(only.performance).toBeUndefined();
  });

  test('probabilities that are not one row of k per label are refused, not paired', () => {
    expect(() => checkDrift(input({ labeled: { probabilities: new Float64Array(7), labels: new Int32Array(2), skipped: 0 } }))).toThrow('checkDrift: 7 labelled probabilities for 2 labels of 4 classes');
  });
});

test('multiclassRow: the first most probable class, and the true class once it is one of the classes', () => {
  expect(multiclassRow([0.2, 0.4, 0.4, 0], 'car', CLASSES)).toEqual({ predicted: 1, trueClass: 2, trueProbability: 0.4 });
  expect(multiclassRow([0.2, 0.4, 0.4, 0], 'plane', CLASSES)).toEqual({ predicted: 1, trueClass: null, trueProbability: null });
  expect(multiclassRow([0.2, 0.4, Number.NaN, 0], 'car', CLASSES)).toEqual({ predicted: null, trueClass: null, trueProbability: null });
  expect(multiclassRow([0.9, 0.1], 7, [3, 7])).toEqual({ predicted: 0, trueClass: 1, trueProbability: 0.1 });
});

test('the multiclass threshold defaults as the binary AUC drop does', () => {
  expect(defaults.maxAccuracyDrop).toBe(0.05);
  expect(defaults.maxAucDrop).toBe(defaults.maxAccuracyDrop);
  expect(monitoringThresholds.safeParse({ maxAccuracyDrop: 1.5 }).success).toBe(false);
});
