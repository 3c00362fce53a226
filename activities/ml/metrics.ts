import { argmaxRow } from './class-output';

/** Binary-classification metrics. A label counts as positive when truthy (non-zero, not NaN). */

/**
 * ROC AUC as the Mann–Whitney statistic: the share of (positive, negative) pairs the scores
 * order correctly, tied pairs counting ½ (equal to sklearn's roc_auc_score). NaN without both
 * classes. Positives' and negatives' scores are sorted separately as Float64Arrays (native
 * numeric sort, no comparator callback) and merged, so 10^6 rows take well under a second.
 */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  let pos = 0;
  for (let i = 0; i < n; i++) if (labels[i]) pos++;
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  const ps = new Float64Array(pos);
  const ns = new Float64Array(neg);
  for (let i = 0, a = 0, b = 0; i < n; i++) {
    if (labels[i]) ps[a++] = scores[i]!;
    else ns[b++] = scores[i]!;
  }
  ps.sort();
  ns.sort();
  // For each run of equal positive scores: negatives strictly below count 1, equal ones ½.
  let u = 0;
  let below = 0;
  for (let i = 0; i < pos; ) {
    const s = ps[i]!;
    let i2 = i + 1;
    while (i2 < pos && ps[i2] === s) i2++;
    while (below < neg && ns[below]! < s) below++;
    let equal = below;
    while (equal < neg && ns[equal] === s) equal++;
    u += (i2 - i) * (below + (equal - below) / 2);
    i = i2;
  }
  return u / (pos * neg);
}

/** Mean binary cross-entropy (natural log), probabilities clipped to [eps, 1 − eps]. */
export function logLoss(probs: ArrayLike<number>, labels: ArrayLike<number>, eps = 1e-15): number {
  let s = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = Math.min(1 - eps, Math.max(eps, probs[i]!));
    s -= labels[i] ? Math.log(p) : Math.log(1 - p);
  }
  return s / probs.length;
}

export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export interface BinaryMetrics {
  rows: number;
  positives: number;
  auc: number;
  logLoss: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  threshold: number;
  expectedCalibrationError: number;
  brier: number;
}

/**
 * Threshold metrics (a row is predicted positive when prob >= threshold) with AUC, log loss,
 * Brier score (mean squared error of the probability) and ECE over 10 bins. Precision, recall
 * and F1 are 0 where their denominators are (sklearn's zero_division=0).
 */
export function binaryMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): BinaryMetrics {
  const n = probs.length;
  if (labels.length !== n) throw new RangeError(`binaryMetrics: ${n} probabilities but ${labels.length} labels`);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const p = probs[i]!;
    const y = labels[i] ? 1 : 0;
    if (p >= threshold) {
      if (y) tp++;
      else fp++;
    } else if (y) fn++;
    else tn++;
    sq += (p - y) * (p - y);
  }
  return {
    rows: n,
    positives: tp + fn,
    auc: auc(probs, labels),
    logLoss: logLoss(probs, labels),
    accuracy: (tp + tn) / n,
    precision: tp + fp ? tp / (tp + fp) : 0,
    recall: tp + fn ? tp / (tp + fn) : 0,
    f1: tp + fp + fn ? (2 * tp) / (2 * tp + fp + fn) : 0,
    threshold,
    expectedCalibrationError: expectedCalibrationError(probs, labels),
    brier: sq / n,
  };
}

/**
 * Expected calibration error with `bins` equal-width probability bins on [0, 1]:
 * Σ_b (n_b/N) · |mean(label in b) − mean(prob in b)|. Bin b holds [b/bins, (b+1)/bins), the last
 * bin also 1 (index min(floor(p·bins), bins−1)); probabilities outside [0, 1] fall in the end
 * bins and NaN probabilities are skipped. Empty bins contribute nothing; NaN for no rows.
 */
export function expectedCalibrationError(probs: ArrayLike<number>, labels: ArrayLike<number>, bins = 10): number {
  const count = new Float64Array(bins);
  const sumP = new Float64Array(bins);
  const sumY = new Float64Array(bins);
  let total = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (Number.isNaN(p)) continue;
    const b = Math.min(bins - 1, Math.max(0, Math.floor(p * bins)));
    count[b]!++;
    sumP[b]! += p;
    if (labels[i]) sumY[b]!++;
    total++;
  }
  if (total === 0) return NaN;
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    const c = count[b]!;
    if (c > 0) ece += (c / total) * Math.abs(sumY[b]! / c - sumP[b]! / c);
  }
  return ece;
}

/** Nearest-rank quantile of unsorted values (NaN for none): latency percentiles, medians. */
export function quantile(values: number[], q: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export interface RegressionMetrics {
  rows: number;
  rmse: number;
  mae: number;
  /** 1 − SSE / SST on these rows: 0 for predicting their mean, negative for worse; NaN for a constant target. */
  r2: number;
  meanPrediction: number;
  meanLabel: number;
}

/** Regression metrics of predictions against targets (sklearn's mean_squared_error, mean_absolute_error, r2_score). */
export function regressionMetrics(predictions: ArrayLike<number>, labels: ArrayLike<number>): RegressionMetrics {
  const n = predictions.length;
  if (labels.length !== n) throw new RangeError(`regressionMetrics: ${n} predictions but ${labels.length} labels`);
  let sse = 0;
  let sae = 0;
  let sumP = 0;
  let sumY = 0;
  for (let i = 0; i < n; i++) {
    const e = predictions[i]! - labels[i]!;
    sse += e * e;
    sae += Math.abs(e);
    sumP += predictions[i]!;
    sumY += labels[i]!;
  }
  const meanLabel = sumY / n;
  let sst = 0;
  for (let i = 0; i < n; i++) sst += (labels[i]! - meanLabel) ** 2;
  return { rows: n, rmse: Math.sqrt(sse / n), mae: sae / n, r2: sst > 0 ? 1 - sse / sst : NaN, meanPrediction: sumP / n, meanLabel };
}

/** Root mean squared error. */
export function rmse(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  return regressionMetrics(predictions, labels).rmse;
}

export interface MulticlassMetrics {
  rows: number;
  /** Mean cross-entropy (natural log) of the true class's probability, clipped to [eps, 1]. */
  logLoss: number;
  accuracy: number;
  /** Unweighted mean of the per-class F1 over the classes that occur in the labels or the predictions (sklearn's average='macro'). */
  macroF1: number;
  /** Per class, in model order: rows of the class (support), recall and precision (null where undefined: no such row, no such prediction) and F1 (0 then, as sklearn's zero_division=0). */
  perClass: Array<{ support: number; predicted: number; recall: number | null; precision: number | null; f1: number }>;
  /** confusion[true][predicted] row counts. */
  confusion: number[][];
}

/**
 * Multiclass metrics of rows × k probabilities (row-major) against class indices. The
 * prediction is the most probable class, the first on a tie (as ONNX ArgMax and numpy argmax).
 */
export function multiclassMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, k: number, eps = 1e-15): MulticlassMetrics {
  const n = labels.length;
  if (probs.length !== n * k) throw new RangeError(`multiclassMetrics: ${probs.length} probabilities for ${n} rows of ${k} classes`);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    const best = argmaxRow(probs, k, i);
    confusion[y]![best]!++;
    if (best === y) correct++;
    loss -= Math.log(Math.min(1, Math.max(eps, probs[i * k + y]!)));
  }
  const perClass = confusion.map((row, c) => {
    const support = row.reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let t = 0; t < k; t++) predicted += confusion[t]![c]!;
    const tp = row[c]!;
    return { support, predicted, recall: support ? tp / support : null, precision: predicted ? tp / predicted : null, f1: support + predicted ? (2 * tp) / (support + predicted) : 0 };
  });
  const present = perClass.filter((p) => p.support + p.predicted > 0);
  return { rows: n, logLoss: loss / n, accuracy: correct / n, macroF1: present.reduce((a, p) => a + p.f1, 0) / present.length, perClass, confusion };
}
