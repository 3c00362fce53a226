import { readFileSync } from 'node:fs';
import path from 'node:path';
import { seededRandom } from '../../activities/ml/dataset';
import { auc, binaryMetrics, expectedCalibrationError, logLoss, type BinaryMetrics } from '../../activities/ml/metrics';

/** Reference values from scikit-learn/numpy: regenerate with `python3 test/reference/drift_fixtures.py`. */
interface Case {
  name: string;
  probs: number[];
  labels: number[];
  threshold: number;
  expected: BinaryMetrics;
  ece15: number;
}

const fx = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/reference/metrics.json'), 'utf8')) as { cases: Case[] };

function expectClose(actual: number, expected: number, rel: number, label: string): void {
  const tol = rel * Math.abs(expected) + 1e-15;
  if (!(Math.abs(actual - expected) <= tol)) throw new Error(`${label}: got ${actual}, sklearn/numpy ${expected} (tolerance ${tol})`);
}

/** The old comparator-sort rank-sum AUC, as an independent reference for the rewrite. */
function rankAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!]) {
        rankSumPos += (i + j) / 2 + 1;
        pos++;
      }
    }
    i = j + 1;
  }
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * (n - pos));
}

describe('binary metrics against scikit-learn fixtures', () => {
  test.each(fx.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const m = binaryMetrics(c.probs, c.labels, c.threshold);
    expect(Object.keys(m).sort()).toEqual(Object.keys(c.expected).sort());
    expect(m.rows).toBe(c.expected.rows);
    expect(m.positives).toBe(c.expected.positives);
    expect(m.threshold).toBe(c.threshold);
    for (const k of ['auc', 'logLoss', 'accuracy', 'precision', 'recall', 'f1', 'expectedCalibrationError', 'brier'] as const) {
      expectClose(m[k], c.expected[k], 1e-9, `${c.name} ${k}`);
    }
    expectClose(expectedCalibrationError(c.probs, c.labels, 15), c.ece15, 1e-9, `${c.name} ECE(15)`);
    expectClose(auc(Float32Array.from(c.probs, (p) => Math.fround(p)), c.labels), rankAuc(Float32Array.from(c.probs, (p) => Math.fround(p)), c.labels), 1e-12, 'float32 auc');
  });
});

describe('metric properties', () => {
  test('auc: ties count ½, degenerate inputs, agreement with the rank-sum formula', () => {
    expect(auc([0.5, 0.5], [1, 0])).toBe(0.5);
    expect(auc([0.1, 0.9], [0, 1])).toBe(1);
    expect(auc([0.9, 0.1], [0, 1])).toBe(0);
    expect(auc([0.2, 0.3], [1, 1])).toBeNaN();
    expect(auc([], [])).toBeNaN();
    const r = seededRandom(3);
    for (let t = 0; t < 20; t++) {
      const n = 50 + Math.floor(r() * 500);
      const s = Float64Array.from({ length: n }, () => Math.round(r() * 20) / 20);
      const y = Uint8Array.from({ length: n }, () => (r() < 0.4 ? 1 : 0));
      if (!y.some((v) => v) || y.every((v) => v)) continue;
      expect(auc(s, y)).toBeCloseTo(rankAuc(s, y), 14);
    }
  });

  test('auc on 10^6 rows is fast', () => {
    const r = seededRandom(9);
    const n = 1_000_000;
    const s = new Float32Array(n);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = r() < 0.2 ? 1 : 0;
      s[i] = Math.round((r() + 0.3 * y[i]!) * 1000) / 1000; // plenty of ties
    }
    const a = auc(s, y);
    expect(a).toBeGreaterThan(0.6);
    expect(a).toBeLessThan(0.9);
  });

  test('precision/recall/F1 are 0 without predicted or actual positives', () => {
    const m = binaryMetrics([0.1, 0.2, 0.3], [1, 0, 1]);
    expect(m).toMatchObject({ precision: 0, recall: 0, f1: 0, accuracy: 1 / 3, positives: 2, rows: 3 });
    const none = binaryMetrics([0.7, 0.2], [0, 0]);
    expect(none.recall).toBe(0);
    expect(none.f1).toBe(0);
    expect(none.auc).toBeNaN();
    expect(() => binaryMetrics([0.5], [1, 0])).toThrow(RangeError);
  });

  test('threshold is inclusive; perfect predictions', () => {
    const m = binaryMetrics([0.5, 0.49], [1, 0]);
    expect(m).toMatchObject({ accuracy: 1, precision: 1, recall: 1, f1: 1, auc: 1 });
    expect(binaryMetrics([1, 0, 1], [1, 0, 1]).brier).toBe(0);
  });

  test('ECE: 0 when calibrated per bin, |bias| for a constant forecast, bins on [0, 1]', () => {
    // Bin [0.2, 0.3): mean prob 0.25, label rate 1/4; bin [0.7, 0.8): 0.75 and 3/4.
    expect(expectedCalibrationError([0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75], [1, 0, 0, 0, 1, 1, 1, 0])).toBeCloseTo(0, 15);
    expect(expectedCalibrationError([0.3, 0.3, 0.3, 0.3], [1, 1, 0, 0])).toBeCloseTo(0.2, 15);
    // p = 1 falls in the last bin, p = 0 in the first.
    expect(expectedCalibrationError([0, 1], [0, 1])).toBe(0);
    expect(expectedCalibrationError([1, 1], [0, 0], 5)).toBe(1);
    expect(expectedCalibrationError([], [])).toBeNaN();
  });

  test('existing exports are unchanged in behaviour', () => {
    expect(logLoss([0.5, 0.5], [1, 0])).toBeCloseTo(Math.LN2, 15);
    expect(logLoss([0], [1])).toBeCloseTo(-Math.log(1e-15), 10);
  });
});
