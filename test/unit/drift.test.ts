import { readFileSync } from 'node:fs';
import path from 'node:path';
import { seededRandom } from '../../activities/ml/dataset';
import { alignCategorical, histogram, jensenShannon, ks2, kstwoSf, lInfinity, psi, PSI_EPSILON, quantileEdges } from '../../activities/ml/drift';

/** Reference values from scipy/numpy: regenerate with `python3 test/reference/drift_fixtures.py`. */
interface NumericCase {
  name: string;
  a: number[];
  b: number[];
  bins: number;
  edges: number[];
  histA: number[];
  histB: number[];
  psi: number;
  jensenShannon: number;
  ks: { statistic: number; pValue: number };
}
interface CategoricalCase {
  name: string;
  p: Record<string, number>;
  q: Record<string, number>;
  keys: string[];
  pCounts: number[];
  qCounts: number[];
  psi: number;
  jensenShannon: number;
  lInfinity: number;
}
interface Fixtures {
  psiEpsilon: number;
  numeric: NumericCase[];
  categorical: CategoricalCase[];
  counts: { name: string; p: number[]; q: number[]; psi: number; jensenShannon: number }[];
  kstwo: { n: number; d: number; sf: number }[];
}

const fx = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/reference/drift.json'), 'utf8')) as Fixtures;

/** |actual − expected| ≤ rel·|expected| (plus a hair for expected values of exactly 0). */
function expectClose(actual: number, expected: number, rel: number, label: string): void {
  const tol = rel * Math.abs(expected) + 1e-15;
  if (!(Math.abs(actual - expected) <= tol)) throw new Error(`${label}: got ${actual}, scipy/numpy ${expected} (tolerance ${tol})`);
}

function randomNormal(n: number, seed: number, mean = 0, sd = 1): Float64Array {
  const r = seededRandom(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

describe('drift measures against scipy/numpy fixtures', () => {
  test('fixtures are present', () => {
    expect(fx.psiEpsilon).toBe(PSI_EPSILON);
    expect(fx.numeric.length).toBeGreaterThanOrEqual(5);
    expect(fx.categorical.length).toBeGreaterThanOrEqual(3);
    expect(fx.kstwo.length).toBeGreaterThan(100);
  });

  test.each(fx.numeric.map((c) => [c.name, c] as const))('numeric: %s', (_name, c) => {
    const edges = quantileEdges(c.a, c.bins);
    expect(edges.length).toBe(c.edges.length);
    edges.forEach((e, i) => expectClose(e, c.edges[i]!, 1e-12, `${c.name} edge ${i}`));
    // Histograms on the reference edges, so a last-bit difference in an edge cannot move a value.
    expect(histogram(c.a, c.edges)).toEqual(c.histA);
    expect(histogram(c.b, c.edges)).toEqual(c.histB);
    expectClose(psi(c.histA, c.histB), c.psi, 1e-9, `${c.name} psi`);
    expectClose(jensenShannon(c.histA, c.histB), c.jensenShannon, 1e-9, `${c.name} js`);
    const ks = ks2(c.a, c.b);
    expectClose(ks.statistic, c.ks.statistic, 1e-12, `${c.name} KS D`);
    expectClose(ks.pValue, c.ks.pValue, 1e-6, `${c.name} KS p`);
  });

  test.each(fx.categorical.map((c) => [c.name, c] as const))('categorical: %s', (_name, c) => {
    const a = alignCategorical(c.p, c.q);
    expect(a).toEqual({ keys: c.keys, p: c.pCounts, q: c.qCounts });
    expectClose(psi(a.p, a.q), c.psi, 1e-9, `${c.name} psi`);
    expectClose(jensenShannon(a.p, a.q), c.jensenShannon, 1e-9, `${c.name} js`);
    expectClose(lInfinity(c.p, c.q), c.lInfinity, 1e-9, `${c.name} L∞`);
  });

  test.each(fx.counts.map((c) => [c.name, c] as const))('count vectors: %s', (_name, c) => {
    expectClose(psi(c.p, c.q), c.psi, 1e-9, `${c.name} psi`);
    expectClose(jensenShannon(c.p, c.q), c.jensenShannon, 1e-9, `${c.name} js`);
  });

  test('kstwoSf matches scipy.stats.kstwo.sf on every branch', () => {
    for (const { n, d, sf } of fx.kstwo) expectClose(kstwoSf(n, d), sf, 1e-9, `kstwo.sf(${d}, ${n})`);
  });
});

describe('drift measure properties', () => {
  const x = randomNormal(3000, 11);
  const y = randomNormal(2500, 12, 0.5, 1.2);
  const edges = quantileEdges(x, 10);
  const hx = histogram(x, edges);
  const hy = histogram(y, edges);

  test('histogram bins are (e[k-1], e[k]], NaN ignored', () => {
    expect(histogram([1, 2, 2.5, 3, 10, NaN, -Infinity, Infinity], [2, 3])).toEqual([3, 2, 2]);
    expect(histogram([], [0])).toEqual([0, 0]);
    expect(hx.reduce((a, b) => a + b, 0)).toBe(3000);
  });

  test('quantile edges: interior deciles, distinct, NaN ignored', () => {
    expect(quantileEdges([1, 2, 3, 4, 5, NaN], 4)).toEqual([2, 3, 4]);
    expect(quantileEdges([7, 7, 7, 7, 8], 4)).toEqual([7]);
    expect(quantileEdges([], 10)).toEqual([]);
    expect(edges.length).toBe(9);
    for (const c of hx) expect(c).toBe(300);
  });

  test('psi: zero on identical inputs, non-negative, scale-free, finite with empty bins', () => {
    expect(psi(hx, hx)).toBe(0);
    expect(psi(hx, hx.map((c) => c * 7))).toBeCloseTo(0, 15);
    expect(psi(hx, hy)).toBeGreaterThan(0.1);
    const withEmpty = psi([10, 0, 10], [0, 10, 10]);
    expect(Number.isFinite(withEmpty)).toBe(true);
    // Two bins swap 1/2 ↔ 1e-4: each contributes (0.5 − 1e-4)·ln(0.5/1e-4).
    expect(withEmpty).toBeCloseTo(2 * (0.5 - 1e-4) * Math.log(0.5 / 1e-4), 12);
    expect(() => psi([1, 2], [1, 2, 3])).toThrow(RangeError);
  });

  test('Jensen–Shannon: symmetric, in [0, 1], 0 for identical, 1 for disjoint', () => {
    const js = jensenShannon(hx, hy);
    expect(js).toBeGreaterThan(0);
    expect(js).toBeLessThan(1);
    expect(jensenShannon(hy, hx)).toBeCloseTo(js, 15);
    expect(jensenShannon(hx, hx)).toBe(0);
    expect(jensenShannon([1, 0], [0, 1])).toBe(1);
    const r = seededRandom(5);
    for (let t = 0; t < 200; t++) {
      const p = Array.from({ length: 6 }, () => (r() < 0.3 ? 0 : r()));
      const q = Array.from({ length: 6 }, () => (r() < 0.3 ? 0 : r()));
      if (!p.some((v) => v > 0) || !q.some((v) => v > 0)) continue;
      const d = jensenShannon(p, q);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(1);
      expect(Math.abs(d - jensenShannon(q, p))).toBeLessThan(1e-15);
    }
  });

  test('L∞ and alignCategorical', () => {
    expect(lInfinity({ a: 1, b: 1 }, { a: 2, b: 2 })).toBe(0);
    expect(lInfinity({ a: 1 }, { b: 3 })).toBe(1);
    expect(lInfinity({ a: 3, b: 1 }, { a: 1, b: 1, c: 2 })).toBeCloseTo(0.5, 15);
    expect(lInfinity({ a: 3, b: 1 }, { a: 1, b: 1, c: 2 })).toBe(lInfinity({ a: 1, b: 1, c: 2 }, { a: 3, b: 1 }));
    expect(lInfinity({}, { a: 1 })).toBeNaN();
    expect(alignCategorical({ b: 2, a: 1 }, { c: 5, a: 4 })).toEqual({ keys: ['a', 'b', 'c'], p: [1, 2, 0], q: [4, 0, 5] });
  });

  test('ks2: D 0 / p 1 for identical samples, symmetric, detects a shift, drops NaN', () => {
    expect(ks2(x, x)).toEqual({ statistic: 0, pValue: 1 });
    const a = ks2(x, y);
    const b = ks2(y, x);
    expect(b.statistic).toBe(a.statistic);
    expect(b.pValue).toBe(a.pValue);
    expect(a.pValue).toBeLessThan(1e-20);
    expect(ks2([1, 2, 3, NaN], [1, 2, 3])).toEqual({ statistic: 0, pValue: 1 });
    expect(ks2([0, 1], [2, 3]).statistic).toBe(1);
    expect(ks2([], [1]).statistic).toBeNaN();
    const same = ks2(randomNormal(500, 21), randomNormal(400, 22));
    expect(same.pValue).toBeGreaterThan(0.01);
  });

  test('ks2 handles 100k-row samples', () => {
    const big1 = randomNormal(100_000, 31);
    const big2 = randomNormal(100_000, 32, 0.01);
    const r = ks2(big1, big2);
    expect(r.statistic).toBeGreaterThan(0);
    expect(r.pValue).toBeGreaterThan(0);
    expect(r.pValue).toBeLessThanOrEqual(1);
  });
});
