/**
 * Distribution-drift measures for data validation and monitoring: histograms on fixed edges,
 * PSI, Jensen–Shannon distance, L∞ distance for categoricals and the two-sample
 * Kolmogorov–Smirnov test. Pure and dependency-free (no I/O); checked against numpy/scipy by
 * test/unit/drift.test.ts with fixtures from test/reference/drift_fixtures.py.
 */

/**
 * Counts of values in bins against sorted upper edges: bin 0 is (-inf, e0], bin k is
 * (e(k-1), ek], the last bin is (e_last, +inf). NaN is ignored. Returns counts (length
 * edges.length + 1); divide by their sum for proportions. Same bins as validate.ts's SQL binning.
 */
export function histogram(values: ArrayLike<number>, edges: number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) continue;
    // First edge >= v (lower bound): that edge's bin, or the overflow bin past the last edge.
    let lo = 0;
    let hi = edges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (edges[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    counts[lo]!++;
  }
  return counts;
}

/** The values other than NaN, sorted ascending. */
function sortedNonNaN(values: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) n++;
  const out = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) out[k++] = values[i]!;
  return out.sort(); // typed-array sort: numeric, no comparator
}

/**
 * Distinct interior cut points at the quantiles 1/bins … (bins−1)/bins, NaN ignored, ascending.
 * Quantiles interpolate linearly between order statistics (numpy's default 'linear' method,
 * index (n−1)·q), computed the way numpy does so that edges agree to the last bit or two. Cut
 * points that repeat (heavy ties) are merged, so fewer than bins−1 edges may come back; none
 * for an empty input. Non-finite cut points (±Infinity in the data) are dropped.
 */
export function quantileEdges(values: ArrayLike<number>, bins: number): number[] {
  const s = sortedNonNaN(values);
  const n = s.length;
  const out: number[] = [];
  if (n === 0) return out;
  for (let k = 1; k < bins; k++) {
    const h = (n - 1) * (k / bins);
    const lo = Math.floor(h);
    const t = h - lo;
    const a = s[lo]!;
    const b = s[Math.min(lo + 1, n - 1)]!;
    const diff = b - a;
    // numpy's _lerp: interpolate from the nearer end, so t = 1 gives exactly b.
    const q = t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
    if (Number.isFinite(q)) out.push(q);
  }
  return out.sort((x, y) => x - y).filter((x, i, arr) => i === 0 || x !== arr[i - 1]);
}

/** Floor applied to each bin proportion in psi(): the common convention for empty bins. */
export const PSI_EPSILON = 1e-4;

function proportions(counts: number[]): number[] {
  let total = 0;
  for (const c of counts) total += c;
  return counts.map((c) => c / total);
}

function sameLength(a: number[], b: number[], what: string): void {
  if (a.length !== b.length) throw new RangeError(`${what}: vectors of different lengths (${a.length} vs ${b.length})`);
}

/**
 * Population Stability Index between two count (or proportion) vectors over the same bins:
 *
 *   PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)
 *
 * where e_i and a_i are the expected and actual counts divided by their own totals, each then
 * floored as max(prop, 1e-4) (PSI_EPSILON; the floored proportions are not renormalised) so that
 * a bin empty on one side contributes a large finite term instead of Infinity. Every term is
 * ≥ 0, so PSI ≥ 0 with 0 for identical distributions. NaN when either side has a zero total.
 * Rule of thumb: < 0.1 stable, 0.1–0.2 moderate shift, ≥ 0.2 significant.
 */
export function psi(expectedCounts: number[], actualCounts: number[]): number {
  sameLength(expectedCounts, actualCounts, 'psi');
  const e = proportions(expectedCounts);
  const a = proportions(actualCounts);
  let s = 0;
  for (let i = 0; i < e.length; i++) {
    const ei = Math.max(e[i]!, PSI_EPSILON);
    const ai = Math.max(a[i]!, PSI_EPSILON);
    s += (ai - ei) * Math.log(ai / ei);
  }
  return s;
}

/** scipy.special.rel_entr: x·ln(x/y), 0 when x = 0, +inf where x > 0 = y. */
function relEntr(x: number, y: number): number {
  if (x > 0 && y > 0) return x * Math.log(x / y);
  if (x === 0 && y >= 0) return 0;
  return Infinity;
}

/**
 * Jensen–Shannon distance (the square root of the divergence) with base-2 logarithms, so it
 * lies in [0, 1]: 0 for identical distributions, 1 for disjoint supports. Inputs are counts (or
 * proportions) over the same bins, each normalised by its own total. Equals
 * scipy.spatial.distance.jensenshannon(p, q, base=2), computed the same way; a divergence that
 * rounds to a hair below 0 is clamped (scipy would return NaN there). NaN for a zero total.
 */
export function jensenShannon(pCounts: number[], qCounts: number[]): number {
  sameLength(pCounts, qCounts, 'jensenShannon');
  const p = proportions(pCounts);
  const q = proportions(qCounts);
  let left = 0;
  let right = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i]! + q[i]!) / 2;
    left += relEntr(p[i]!, m);
    right += relEntr(q[i]!, m);
  }
  const js = (left + right) / Math.LN2;
  return Math.sqrt(Math.max(0, js) / 2);
}

function total(r: Record<string, number>): number {
  let s = 0;
  for (const v of Object.values(r)) s += v;
  return s;
}

/**
 * L∞ (Chebyshev) distance between two categorical distributions given as category → count,
 * over the union of the categories (missing = 0): max_k |p_k/Σp − q_k/Σq|. This is TFX's
 * (TFDV's) drift measure for categorical features. NaN when either side is empty.
 */
export function lInfinity(p: Record<string, number>, q: Record<string, number>): number {
  const tp = total(p);
  const tq = total(q);
  if (!(tp > 0) || !(tq > 0)) return NaN;
  let d = 0;
  for (const k of new Set([...Object.keys(p), ...Object.keys(q)])) {
    d = Math.max(d, Math.abs((p[k] ?? 0) / tp - (q[k] ?? 0) / tq));
  }
  return d;
}

/**
 * The categorical inputs of lInfinity as aligned count vectors for psi / jensenShannon: keys are
 * the sorted union of both sides' categories (plain string order), a category missing on one
 * side counts 0 there.
 */
export function alignCategorical(p: Record<string, number>, q: Record<string, number>): { keys: string[]; p: number[]; q: number[] } {
  const keys = [...new Set([...Object.keys(p), ...Object.keys(q)])].sort();
  return { keys, p: keys.map((k) => p[k] ?? 0), q: keys.map((k) => q[k] ?? 0) };
}

/* ------------------------------------------------------------------------------------------ */
/* Two-sample Kolmogorov–Smirnov                                                               */
/* ------------------------------------------------------------------------------------------ */

/** numpy.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const r = x - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Two-sample Kolmogorov–Smirnov test (two-sided): D = sup |F_a − F_b| over the pooled values
 * (ties handled by evaluating both empirical CDFs after all copies of a value) and the p-value of
 * scipy.stats.ks_2samp(a, b, method='asymp'). NaN values are dropped (nan_policy='omit'); with an
 * empty side both numbers are NaN.
 *
 * Note that scipy's "asymptotic" p-value is not the Kolmogorov limit distribution: it is the
 * survival function of the exact one-sample statistic D_n (scipy.stats.kstwo) at
 * n = round(n1·n2/(n1+n2)), which kstwoSf reproduces.
 */
export function ks2(a: ArrayLike<number>, b: ArrayLike<number>): { statistic: number; pValue: number } {
  const x = sortedNonNaN(a);
  const y = sortedNonNaN(b);
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) return { statistic: NaN, pValue: NaN };
  let i = 0;
  let j = 0;
  let maxS = -Infinity;
  let minS = Infinity;
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && x[i]! <= y[j]!) ? x[i]! : y[j]!;
    while (i < n1 && x[i]! <= v) i++;
    while (j < n2 && y[j]! <= v) j++;
    // Same arithmetic as scipy (cdf1 − cdf2 with cdf = count / n), so D agrees bit for bit.
    const diff = i / n1 - j / n2;
    if (diff > maxS) maxS = diff;
    if (diff < minS) minS = diff;
  }
  const lower = Math.min(Math.max(-minS, 0), 1);
  const d = lower > maxS ? lower : maxS;
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1];
  const en = (m * n) / (m + n);
  const p = kstwoSf(roundHalfEven(en), d);
  return { statistic: d, pValue: Number.isNaN(p) ? p : Math.min(1, Math.max(0, p)) };
}

const EP128 = 2 ** 128;
const EM128 = 2 ** -128;
const LOG_2PI = Math.log(2 * Math.PI);
const SQRT2PI = Math.sqrt(2 * Math.PI);
const PI2 = Math.PI ** 2;
const PI4 = Math.PI ** 4;
const PI6 = Math.PI ** 6;
/** cephes MINLOG = ln(2^-1022): exp() of anything smaller underflows. */
const MINLOG = -708.3964185322641;

const clip01 = (p: number) => (p < 0 ? 0 : p > 1 ? 1 : p);

/** x · 2^e without overflowing the scale factor on the way. */
function ldexp(x: number, e: number): number {
  while (e > 1000) {
    x *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    x *= 2 ** -1000;
    e += 1000;
  }
  return x * 2 ** e;
}

/**
 * Survival function P(D_n ≥ d) of the two-sided one-sample Kolmogorov–Smirnov statistic for
 * sample size n: scipy.stats.kstwo.sf(d, n). A port of scipy's _kolmogn (Simard & L'Ecuyer 2011):
 * exact Ruben–Gambino formulas at the ends, Durbin's matrix (Marsaglia–Tsang–Wang) or Pomeranz's
 * recursion for small n·d², twice the exact one-sided Smirnov tail for large d, and the Pelz–Good
 * expansion otherwise. Exported for ks2's tests.
 */
export function kstwoSf(n: number, d: number): number {
  if (!Number.isInteger(n) || n <= 0 || Number.isNaN(d)) return NaN;
  if (d >= 1) return 0;
  if (d <= 0) return 1;
  const t = n * d;
  if (t <= 1) {
    if (t <= 0.5) return 1;
    let cdf: number;
    if (n <= 140) {
      cdf = 1;
      for (let i = 1; i <= n; i++) cdf *= i * (1 / n) * (2 * t - 1);
    } else {
      cdf = Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1));
    }
    return clip01(1 - cdf);
  }
  if (t >= n - 1) return clip01(2 * (1 - d) ** n);
  if (d >= 0.5) return clip01(2 * smirnovSf(n, d));
  const nd2 = t * d;
  if (n <= 140) {
    if (nd2 <= 0.754693) return clip01(1 - durbinCdf(n, d));
    if (nd2 <= 4) return clip01(1 - pomeranzCdf(n, d));
    return clip01(2 * smirnovSf(n, d));
  }
  if (nd2 >= 370) return 0;
  if (nd2 >= 2.2) return clip01(2 * smirnovSf(n, d));
  const cdf = n <= 100000 && n * d ** 1.5 <= 1.4 ? durbinCdf(n, d) : pelzGoodCdf(n, d);
  return clip01(1 - cdf);
}

/** Stirling coefficients B_2j / (2j(2j−1)), j = 8 … 1. */
const STIRLING = [
  -2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4, -5.952380952380952381e-4,
  7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2,
];

/** ln(n! / n^n) by Stirling's series with n·ln(n) cancelled analytically. */
function logFactorialOverPower(n: number): number {
  const rn = 1 / n;
  const x = rn / n;
  let poly = 0;
  for (const c of STIRLING) poly = poly * x + c;
  return Math.log(n) / 2 - n + LOG_2PI / 2 + rn * poly;
}

function matmul(a: Float64Array, b: Float64Array, m: number): Float64Array {
  const c = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < m; k++) {
      const aik = a[i * m + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < m; j++) c[i * m + j]! += aik * b[k * m + j]!;
    }
  }
  return c;
}

/** P(D_n ≤ d) by Durbin's matrix method as arranged by Marsaglia, Tsang & Wang (2003). */
function durbinCdf(n: number, d: number): number {
  if (d >= 1) return 1;
  const nd = n * d;
  if (nd <= 0.5) return 0;
  const k = Math.ceil(nd);
  const h = k - nd;
  const m = 2 * k - 1;
  const v = new Float64Array(m);
  const w = new Float64Array(m);
  let fac = 1;
  for (let j = 1; j <= m; j++) {
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] = (1 - h ** j) * fac;
  }
  const tt = Math.max(2 * h - 1, 0) ** m - 2 * h ** m;
  v[m - 1] = (1 + tt) * fac;
  let H: Float64Array = new Float64Array(m * m);
  for (let i = 1; i < m; i++) for (let r = i - 1; r < m; r++) H[r * m + i] = w[r - i + 1]!;
  for (let r = 0; r < m; r++) H[r * m] = v[r]!;
  for (let c = 0; c < m; c++) H[(m - 1) * m + c] = v[m - 1 - c]!;

  // H^n by repeated squaring, rescaling by 2^-128 to stay in range.
  let P: Float64Array = new Float64Array(m * m);
  for (let i = 0; i < m; i++) P[i * m + i] = 1;
  let expnt = 0;
  let hExpnt = 0;
  for (let nn = n; nn > 0; nn = Math.floor(nn / 2)) {
    if (nn % 2) {
      P = matmul(P, H, m);
      expnt += hExpnt;
    }
    if (nn === 1) break; // the last square is never used
    H = matmul(H, H, m);
    hExpnt *= 2;
    if (Math.abs(H[(k - 1) * m + (k - 1)]!) > EP128) {
      for (let i = 0; i < H.length; i++) H[i]! /= EP128;
      hExpnt += 128;
    }
  }
  let p = P[(k - 1) * m + (k - 1)]!;
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n; // × n!/n^n
    if (Math.abs(p) < EM128) {
      p *= EP128;
      expnt -= 128;
    }
  }
  return clip01(ldexp(p, expnt));
}

function pomeranzBounds(i: number, n: number, ll: number, ceilf: number, roundf: number): [number, number] {
  let j1: number;
  let j2: number;
  if (i === 0) {
    j1 = -ll - ceilf - 1;
    j2 = ll + ceilf - 1;
  } else {
    const half = Math.floor((i + 1) / 2);
    if ((i + 1) % 2 === 0) {
      if (half === n + 1) {
        j1 = n - ll - ceilf - 1;
        j2 = n + ll + ceilf - 1;
      } else {
        j1 = half - 1 - ll - roundf - 1;
        j2 = half + ll - 1 + ceilf - 1;
      }
    } else {
      j1 = half - 1 - ll - 1;
      j2 = half + ll + roundf - 1;
    }
  }
  return [Math.max(j1 + 2, 0), Math.min(j2, n)];
}

/** P(D_n ≤ d) by Pomeranz's (1974) recursion, as in scipy's _kolmogn_Pomeranz. */
function pomeranzCdf(n: number, x: number): number {
  const t = n * x;
  const ll = Math.floor(t);
  const f = t - ll;
  const g = Math.min(f, 1 - f);
  const ceilf = f > 0 ? 1 : 0;
  const roundf = f > 0.5 ? 1 : 0;
  const npwrs = 2 * (ll + 1);
  // (g/n)^m/m!, (2g/n)^m/m!, ((1−2g)/n)^m/m!: Poisson probabilities short of their normaliser.
  const gpower = new Float64Array(npwrs);
  const twogpower = new Float64Array(npwrs);
  const onem2gpower = new Float64Array(npwrs);
  gpower[0] = twogpower[0] = onem2gpower[0] = 1;
  for (let m = 1; m < npwrs; m++) {
    gpower[m] = (gpower[m - 1]! * (g / n)) / m;
    twogpower[m] = (twogpower[m - 1]! * ((2 * g) / n)) / m;
    onem2gpower[m] = (onem2gpower[m - 1]! * ((1 - 2 * g) / n)) / m;
  }
  let V0 = new Float64Array(npwrs);
  let V1 = new Float64Array(npwrs);
  V1[0] = 1;
  let V0s = 0;
  let V1s = 0;
  let expnt = 0;
  let [j1, j2] = pomeranzBounds(0, n, ll, ceilf, roundf);
  for (let i = 1; i < 2 * n + 2; i++) {
    const k1 = j1;
    [V0, V1] = [V1, V0];
    [V0s, V1s] = [V1s, V0s];
    V1.fill(0);
    [j1, j2] = pomeranzBounds(i, n, ll, ceilf, roundf);
    const pwrs = i === 1 || i === 2 * n + 1 ? gpower : i % 2 ? twogpower : onem2gpower;
    const ln2 = j2 - k1 + 1;
    if (ln2 > 0) {
      // Entries [j1−k1, j2−k1] of the full convolution of V0[k1−V0s …][:ln2] with pwrs[:ln2].
      const aStart = k1 - V0s;
      const la = Math.max(0, Math.min(ln2, npwrs - aStart));
      const lb = Math.min(ln2, npwrs);
      const convStart = j1 - k1;
      const convLen = j2 - j1 + 1;
      let max = 0;
      for (let s = 0; s < convLen; s++) {
        const idx = convStart + s;
        let acc = 0;
        for (let u = Math.max(0, idx - lb + 1); u <= Math.min(idx, la - 1); u++) acc += V0[aStart + u]! * pwrs[idx - u]!;
        V1[s] = acc;
        if (acc > max) max = acc;
      }
      if (max > 0 && max < EM128) {
        for (let s = 0; s < npwrs; s++) V1[s]! *= EP128;
        expnt -= 128;
      }
      V1s = V0s + j1 - k1;
    }
  }
  let ans = V1[n - V1s]!;
  for (let m = 1; m <= n; m++) {
    if (Math.abs(ans) > EP128) {
      ans *= EM128;
      expnt += 128;
    }
    ans *= m;
  }
  return clip01(ldexp(ans, expnt));
}

/** P(D_n ≤ d) by the Pelz–Good (1976) expansion of the Li-Chien/Korolyuk series. */
function pelzGoodCdf(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const z = Math.sqrt(n) * x;
  const z2 = z * z;
  const z3 = z2 * z;
  const z4 = z2 * z2;
  const z6 = z4 * z2;
  const qlog = -PI2 / 8 / z2;
  if (qlog < -708) return 0;
  let q = Math.exp(qlog);
  const k1a = -z2;
  const k1b = PI2 / 4;
  const k2a = 6 * z6 + 2 * z4;
  const k2b = ((2 * z4 - 5 * z2) * PI2) / 4;
  const k2c = (PI4 * (1 - 2 * z2)) / 16;
  const k3d = (PI6 * (5 - 30 * z2)) / 64;
  const k3c = (PI4 * (-60 * z2 + 212 * z4)) / 16;
  const k3b = (PI2 * (135 * z4 - 96 * z6)) / 4;
  const k3a = -30 * z6 - 90 * z ** 8;
  const K = [0, 0, 0, 0];
  // Horner over the odd terms q^((2k−1)^2).
  const maxk = Math.ceil((16 * z) / Math.PI);
  for (let k = maxk; k > 0; k--) {
    const m = 2 * k - 1;
    const m2 = m * m;
    const m4 = m2 * m2;
    const m6 = m4 * m2;
    const qp = q ** (8 * k);
    const c = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
    for (let i = 0; i < 4; i++) K[i] = K[i]! * qp + c[i]!;
  }
  const div = [z, 6 * z4, 72 * z ** 7, 6480 * z ** 10];
  for (let i = 0; i < 4; i++) K[i] = (K[i]! * q * SQRT2PI) / div[i]!;
  // The remaining sums over all k of q^(k^2) for K2 and K3.
  q = Math.exp(-PI2 / 2 / z2);
  let k2extra = 0;
  let k3extra = 0;
  const sqrt3z = Math.sqrt(3) * z;
  for (let k = maxk; k > 0; k--) {
    const k2 = k * k;
    const qk = q ** k2;
    const kpi = Math.PI * k;
    k2extra += k2 * qk;
    k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qk;
  }
  K[2] = K[2]! + (k2extra * PI2 * SQRT2PI) / (-36 * z3);
  K[3] = K[3]! + (k3extra * PI2 * SQRT2PI) / (216 * z6);
  let sum = 0;
  for (let i = 0; i < 4; i++) sum += K[i]! / n ** (i / 2);
  return sum;
}

/** n·x as an exact double-double (hi + lo), by Dekker's product. */
function twoProduct(a: number, b: number): [number, number] {
  const hi = a * b;
  const split = (v: number): [number, number] => {
    const c = 134217729 * v; // 2^27 + 1
    const h = c - (c - v);
    return [h, v - h];
  };
  const [ah, al] = split(a);
  const [bh, bl] = split(b);
  const lo = ah * bh - hi + ah * bl + al * bh + al * bl;
  return [hi, lo];
}

/**
 * One-sided Smirnov tail P(D_n⁺ ≥ x) by the Birnbaum–Tingey sum (scipy.special.smirnov):
 * x · Σ_{v=0}^{⌊n(1−x)⌋} C(n,v) (x + v/n)^(v−1) (1 − x − v/n)^(n−v), all terms positive, summed in
 * log space. Only ever called from kstwoSf with n·x² > 2 or x ≥ 0.5, where scipy uses this sum.
 */
function smirnovSf(n: number, x: number): number {
  if (!(n > 0 && x >= 0 && x <= 1)) return NaN;
  if (n === 1) return 1 - x;
  if (x === 0) return 1;
  if (x === 1) return 0;
  const [nxHi, nxLo] = twoProduct(n, x);
  // floor(n·x) and the remainder, exactly.
  let nxfl = Math.floor(nxHi);
  let alpha = nxHi - nxfl + nxLo;
  if (alpha < 0) {
    nxfl -= 1;
    alpha += 1;
  }
  if (alpha >= 1) {
    nxfl += 1;
    alpha -= 1;
  }
  let last = n - nxfl - (alpha === 0 ? 0 : 1);
  if (alpha === 0) last -= 1; // (1 − x − v/n)^(n−v) is 0 at v = n(1−x)
  if (nxfl === 0 || (nxfl === 1 && alpha === 0)) return 1 - x * Math.exp((n - 1) * Math.log1p(x));
  if (-2 * n * x * x < MINLOG) return 0;
  if (nxfl >= n - 1) return Math.exp(n * Math.log1p(-x));
  if (n > 1000000) {
    // scipy's approximation for very large n: p ≈ exp(−(6nx+1)²/18n).
    const logp = -((6 * n * x + 1) ** 2) / 18 / n;
    return logp < -Math.LN2 ? Math.exp(logp) : 1 + Math.expm1(logp);
  }
  // Terms matter up to v ~ n, so ln C(n, v) is accumulated with Neumaier's compensated sum
  // (plain summation drifts by ~1e-8 over 10^5 steps), and each factor's logarithm is taken of a
  // quotient computed directly rather than as a difference of large logarithms.
  let logC = 0; // ln C(n, v) = logC + logCc
  let logCc = 0;
  let sum = 0;
  const nTerms = last + 1;
  for (let v = 0; v < nTerms; v++) {
    // x + v/n = (nx + v)/n;  1 − x − v/n = (n − v − nx)/n with nx exact.
    const up = (v + nxHi + nxLo) / n;
    const logDown = up < 0.5 ? Math.log1p(-up) : Math.log((n - v - nxHi - nxLo) / n);
    const term = Math.exp(logC + logCc + (v - 1) * Math.log(up) + (n - v) * logDown);
    sum += term;
    if (term !== 0) {
      if (4 * (nTerms - v) * term < Number.EPSILON * sum && v !== nTerms - 1) break;
    } else if (v > n / 2) break;
    const inc = Math.log((n - v) / (v + 1));
    const t = logC + inc;
    logCc += Math.abs(logC) >= Math.abs(inc) ? logC - t + inc : inc - t + logC;
    logC = t;
  }
  return clip01(x * sum);
}
