import type { BinaryPerformance, ClassPredictionFigures, MonitoringFeatureFigures, MulticlassPerformance, RegressionPerformance, ScorePredictionFigures } from '../../../workflows/contracts/lifecycle';
import { argmaxRow } from '../class-output';
import type { ClassList } from '../dataset';
import { alignCategorical, histogram, jensenShannon, ks2, psi, quantileEdges } from '../drift';
import { auc, logLoss, multiclassMetrics, regressionMetrics } from '../metrics';
import type { CategoricalBaseline, DriftCheckInput, NumericBaseline } from './drift-check';

/** The monitoring figures, pure: per-feature drift, prediction drift, online performance. */

export const f2 = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 0.01 || x === 0 ? x.toFixed(2) : x.toExponential(1));
export const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
/**
 * JSON has no NaN or Infinity: a figure that cannot be computed is null, and `notes` gets the
 * reason under its name. A stand-in 0 would read as "no drift".
 */
export function figure(name: string, x: number, notes: Record<string, string>, why?: string): number | null {
  if (Number.isFinite(x)) return x;
  notes[name] = why ?? (Number.isNaN(x) ? 'not a number (0/0)' : 'infinite');
  return null;
}

const withNotes = <T extends object>(fig: T, notes: Record<string, string>): T => (Object.keys(notes).length ? { ...fig, notComputed: notes } : fig);
const NO_VALUES = 'no value in the window (every row is missing it)';

export function numericFigures(b: NumericBaseline, values: ArrayLike<number>): MonitoringFeatureFigures {
  const hist = histogram(values, b.edges);
  let present = 0;
  for (const c of hist) present += c;
  const missing = values.length - present;
  const notes: Record<string, string> = {};
  const fig: MonitoringFeatureFigures = {
    kind: 'numeric',
    psi: present ? figure('psi', psi(b.histogram, hist), notes) : figure('psi', NaN, notes, NO_VALUES),
    js: present ? figure('js', jensenShannon(b.histogram, hist), notes) : figure('js', NaN, notes, NO_VALUES),
    missingFraction: values.length ? missing / values.length : 0,
    baselineMissingFraction: b.rows ? b.missing / b.rows : 0,
  };
  if (b.sample && present) {
    const ks = ks2(b.sample, values);
    if (Number.isFinite(ks.statistic)) Object.assign(fig, { ks: ks.statistic, ksPValue: figure('ksPValue', ks.pValue, notes) });
  }
  return withNotes(fig, notes);
}

/** Categories below this share of the training rows are compared as one bucket (see binnedCategories). */
export const MIN_CATEGORY_SHARE = 0.01;
export const MAX_CATEGORY_BINS = 30;
/** The bucket of rare and unseen categories: not a string any category can be. */
export const OTHER_CATEGORY = '\u0000other';

/**
 * The categories compared one by one: those with at least MIN_CATEGORY_SHARE of the training
 * rows, at most MAX_CATEGORY_BINS of them (most frequent first, ties by name). Everything else —
 * rare and unseen categories — falls into OTHER_CATEGORY. Without this, a feature like origin
 * airport (~250 values, most under 0.5%) has a PSI of about (K−1)/n from sampling noise alone:
 * ~0.5 on a 500-row window of traffic drawn from the training distribution itself.
 */
export function binnedCategories(categories: Record<string, number>): Set<string> {
  let total = 0;
  for (const n of Object.values(categories)) total += n;
  const kept = Object.entries(categories)
    .filter(([, n]) => n >= MIN_CATEGORY_SHARE * total)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, MAX_CATEGORY_BINS);
  return new Set(kept.map(([k]) => k));
}

function bucketed(counts: Record<string, number>, kept: Set<string>): Record<string, number> {
  // A Map, then fromEntries: a category called "__proto__" must stay a key, not become a prototype.
  const out = new Map<string, number>();
  for (const [k, n] of Object.entries(counts)) {
    const key = kept.has(k) ? k : OTHER_CATEGORY;
    out.set(key, (out.get(key) ?? 0) + n);
  }
  return Object.fromEntries(out);
}

export function categoricalFigures(b: CategoricalBaseline, w: { counts: Record<string, number>; missing: number }): MonitoringFeatureFigures {
  const kept = binnedCategories(b.categories);
  const { p, q } = alignCategorical(bucketed(b.categories, kept), bucketed(w.counts, kept));
  let present = 0;
  let unseen = 0;
  for (const [k, n] of Object.entries(w.counts)) {
    present += n;
    if (!Object.hasOwn(b.categories, k)) unseen += n;
  }
  const rows = present + w.missing;
  const notes: Record<string, string> = {};
  return withNotes(
    {
      kind: 'categorical',
      psi: present ? figure('psi', psi(p, q), notes) : figure('psi', NaN, notes, NO_VALUES),
      js: present ? figure('js', jensenShannon(p, q), notes) : figure('js', NaN, notes, NO_VALUES),
      missingFraction: rows ? w.missing / rows : 0,
      baselineMissingFraction: b.rows ? b.missing / b.rows : 0,
      unseenFraction: rows ? unseen / rows : 0,
    },
    notes,
  );
}

function withoutNaN(values: ArrayLike<number>): Float64Array {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) n++;
  const out = new Float64Array(n);
  for (let i = 0, k = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) out[k++] = values[i]!;
  return out;
}

const mean = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length ? s / xs.length : 0;
};

/** Prediction drift on the deciles of the baseline scores: equal-width bins would put most of a 20%-positive model's mass in two bins. */
export function predictionFigures(baseline: ArrayLike<number>, window: ArrayLike<number>): ScorePredictionFigures | undefined {
  const b = withoutNaN(baseline);
  const w = withoutNaN(window);
  if (!b.length || !w.length) return undefined;
  const edges = quantileEdges(b, 10);
  const hb = histogram(b, edges);
  const hw = histogram(w, edges);
  const notes: Record<string, string> = {};
  return withNotes({ psi: figure('psi', psi(hb, hw), notes), js: figure('js', jensenShannon(hb, hw), notes), ks: figure('ks', ks2(b, w).statistic, notes), mean: mean(w), baselineMean: mean(b) }, notes);
}

export function performanceFigures(probs: ArrayLike<number>, labels: ArrayLike<number>, offline: DriftCheckInput['offline']): BinaryPerformance {
  let correct = 0;
  let positives = 0;
  for (let i = 0; i < probs.length; i++) {
    const y = labels[i] ? 1 : 0;
    positives += y;
    if ((probs[i]! >= 0.5 ? 1 : 0) === y) correct++;
  }
  const n = probs.length;
  const a = auc(probs, labels);
  return {
    auc: Number.isNaN(a) ? null : a,
    logLoss: n ? logLoss(probs, labels) : 0,
    accuracy: n ? correct / n : 0,
    positiveRate: n ? positives / n : 0,
    meanPrediction: mean(probs),
    offlineAuc: offline?.auc ?? null,
    offlineLogLoss: offline?.logLoss ?? null,
  };
}


/** A regression's figures on its labelled predictions, beside the offline test split's (from the version's metrics). */
export function regressionPerformanceFigures(predictions: ArrayLike<number>, labels: ArrayLike<number>, offline: DriftCheckInput['offline']): RegressionPerformance {
  const m = regressionMetrics(predictions, labels);
  return {
    task: 'regression',
    rmse: m.rmse,
    mae: m.mae,
    r2: Number.isFinite(m.r2) ? m.r2 : null,
    meanPrediction: m.meanPrediction,
    meanLabel: m.meanLabel,
    offlineRmse: offline?.rmse ?? null,
    offlineMae: offline?.mae ?? null,
  };
}

// ---- multiclass: the window in the version's classes' terms -----------------------------------

/** A class's index in the model's order; -1 for anything else. Strict: the integer 3 is not the string "3", as feedback has it. */
const classIndex = (label: unknown, classes: ClassList): number => (label === null || label === undefined ? -1 : (classes as unknown[]).indexOf(label));

/**
 * A logged multiclass row read against the model's classes: its predicted class (the first most
 * probable, as served), and once a label in the classes arrived, that class and its probability.
 * A row whose probabilities are not k finite numbers predicts nothing and is judged on nothing.
 * Shared with the canary's judgement (activities/deployment.ts), so both read a row alike.
 */
export function multiclassRow(probs: unknown, label: unknown, classes: ClassList): { predicted: number | null; trueClass: number | null; trueProbability: number | null } {
  const k = classes.length;
  if (!Array.isArray(probs) || probs.length !== k || !probs.every((p) => typeof p === 'number' && Number.isFinite(p))) return { predicted: null, trueClass: null, trueProbability: null };
  const y = classIndex(label, classes);
  return { predicted: argmaxRow(probs as number[], k, 0), trueClass: y >= 0 ? y : null, trueProbability: y >= 0 ? (probs[y] as number) : null };
}

/** Served rows per class (model order), and rows whose logged class is none of them. */
export interface ClassCounts {
  counts: number[];
  outside: number;
}

/** A window's served classes, from (logged label → rows) pairs: a label that is no class counts in no bin. */
export function classCounts(served: ReadonlyArray<{ label: unknown; n: number }>, classes: ClassList): ClassCounts {
  const counts = new Array<number>(classes.length).fill(0);
  let outside = 0;
  for (const { label, n } of served) {
    const c = classIndex(label, classes);
    if (c >= 0) counts[c]! += n;
    else outside += n;
  }
  return { counts, outside };
}

/** Labelled rows as multiclassMetrics takes them: probabilities rows × k (row-major) and the true class's index. */
export interface LabeledClasses {
  probabilities: Float64Array;
  labels: Int32Array;
  /** Rows left out: the label is none of the classes, or the probabilities are not k finite numbers. */
  skipped: number;
}

/** Logged (probabilities, label) pairs read against the classes; rows that cannot be judged are counted, not guessed. */
export function labeledClasses(rows: ReadonlyArray<{ probabilities: unknown; label: unknown }>, classes: ClassList): LabeledClasses {
  const k = classes.length;
  const kept: Array<{ probs: number[]; y: number }> = [];
  for (const r of rows) {
    const row = multiclassRow(r.probabilities, r.label, classes);
    if (row.predicted !== null && row.trueClass !== null) kept.push({ probs: r.probabilities as number[], y: row.trueClass });
  }
  const probabilities = new Float64Array(kept.length * k);
  kept.forEach((r, i) => probabilities.set(r.probs, i * k));
  return { probabilities, labels: Int32Array.from(kept, (r) => r.y), skipped: rows.length - kept.length };
}

const sum = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
};

/** Why an offline histogram cannot be compared with k served classes; undefined when it can. */
function unusableHistogram(h: ArrayLike<number> | undefined, k: number): string | undefined {
  if (!h) return 'the version has no offline prediction histogram (its test rows per predicted class)';
  if (h.length !== k) return `the offline prediction histogram has ${h.length} bins for ${k} classes`;
  for (let i = 0; i < h.length; i++) if (!(Number.isFinite(h[i]!) && h[i]! >= 0)) return `the offline prediction histogram has a count that is not a number ≥ 0 (${h[i]})`;
  if (!(sum(h) > 0)) return 'the offline prediction histogram counts no rows';
  return undefined;
}

/**
 * Prediction drift of a multiclass version: PSI and JS of the served classes' shares against the
 * test split's predicted-class shares, one bin per class. Undefined when the version served
 * nothing in the window (as predictionFigures without scores).
 */
export function classPredictionFigures(offlineHistogram: ArrayLike<number> | undefined, served: ClassCounts, classes: ClassList): ClassPredictionFigures | undefined {
  const rows = sum(served.counts);
  if (rows + served.outside === 0) return undefined;
  const notes: Record<string, string> = {};
  const unusable = unusableHistogram(offlineHistogram, classes.length);
  const baseline = unusable ? undefined : Array.from(offlineHistogram!);
  const why = unusable ?? (rows ? undefined : 'no served row of this version has a label among its classes');
  const [p, j] = why ? [NaN, NaN] : [psi(baseline!, served.counts), jensenShannon(baseline!, served.counts)];
  const total = baseline ? sum(baseline) : 0;
  return withNotes<ClassPredictionFigures>(
    {
      task: 'multiclass',
      psi: figure('psi', p, notes, why),
      js: figure('js', j, notes, why),
      classes,
      shares: served.counts.map((c) => (rows ? c / rows : 0)),
      baselineShares: baseline ? baseline.map((c) => c / total) : null,
      rows,
      outsideClasses: served.outside,
    },
    notes,
  );
}

/** A multiclass version's figures on its labelled predictions, beside the offline test split's (from the version's metrics). */
export function multiclassPerformanceFigures(labeled: LabeledClasses, k: number, offline: DriftCheckInput['offline']): MulticlassPerformance {
  const m = multiclassMetrics(labeled.probabilities, labeled.labels, k);
  return {
    task: 'multiclass',
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    logLoss: m.logLoss,
    offlineAccuracy: offline?.accuracy ?? null,
    offlineMacroF1: offline?.macroF1 ?? null,
    offlineLogLoss: offline?.logLoss ?? null,
    skippedRows: labeled.skipped,
  };
}
