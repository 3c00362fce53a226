import type { MonitoringFeatureFigures, MonitoringReport, MonitoringThresholds } from '../../workflows/lifecycle-api';
import type { ColumnStats } from '../data/validate';
import { alignCategorical, histogram, jensenShannon, ks2, psi, quantileEdges } from '../data/drift';
import { auc, logLoss } from '../training/metrics';

/**
 * The monitoring check as a pure function: training baseline + one window of served traffic
 * (+ labelled predictions) + thresholds → figures and a verdict. No I/O, so the activity, the
 * unit tests (against scipy/sklearn fixtures) and the drift benchmark all run exactly this.
 */

/** Numeric feature of the training split: decile edges with the split's counts on them, and raw values for KS. */
export interface NumericBaseline {
  kind: 'numeric';
  rows: number;
  missing: number;
  edges: number[];
  histogram: number[];
  /** Raw (sampled) training values; without them there is no KS figure. */
  sample?: ArrayLike<number>;
}

/** Categorical feature of the training split: value counts; the missing value ('' or null) is counted in `missing`, not here. */
export interface CategoricalBaseline {
  kind: 'categorical';
  rows: number;
  missing: number;
  categories: Record<string, number>;
}

export type FeatureBaseline = NumericBaseline | CategoricalBaseline;

/** A window's numeric column (NaN = missing) or a categorical one already counted (SQL GROUP BY or countCategories). */
export type FeatureWindow = { kind: 'numeric'; values: ArrayLike<number> } | { kind: 'categorical'; counts: Record<string, number>; missing: number };

export interface DriftCheckInput {
  thresholds: MonitoringThresholds;
  baseline: Record<string, FeatureBaseline>;
  window: { rows: number; features: Record<string, FeatureWindow> };
  /** The model's scores on its test split vs the window's served probabilities (NaN skipped). */
  prediction?: { baseline: ArrayLike<number>; window: ArrayLike<number> };
  /** Predictions whose label arrived, with the label as 0/1. */
  labeled?: { probs: ArrayLike<number>; labels: ArrayLike<number> };
  offline?: { auc: number | null; logLoss: number | null };
  /** Input keys the window's rows carried (key → rows), against the model's input signature. */
  schema?: { expected: string[]; keyRows: Record<string, number> };
}

export type DriftCheckResult = Pick<MonitoringReport, 'rows' | 'labeledRows' | 'level' | 'breach' | 'reasons' | 'features' | 'quality' | 'prediction' | 'performance'>;

/** The missing category: prepare.ts writes a missing categorical value as ''. */
export const MISSING_CATEGORY = '';

export function countCategories(values: ArrayLike<string | null | undefined>): { counts: Record<string, number>; missing: number } {
  const counts = new Map<string, number>();
  let missing = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || v === MISSING_CATEGORY) missing++;
    else counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  return { counts: Object.fromEntries(counts), missing };
}

/** The baseline of one feature from the training split's statistics (activities/data/validate.ts). */
export function baselineFromStats(kind: 'numeric' | 'categorical', stats: Pick<ColumnStats, 'nulls' | 'edges' | 'selfHistogram' | 'categories'>, rows: number, sample?: ArrayLike<number>): FeatureBaseline | undefined {
  if (kind === 'numeric') {
    if (!stats.edges?.length || !stats.selfHistogram) return undefined;
    return { kind, rows, missing: stats.nulls, edges: stats.edges, histogram: stats.selfHistogram, ...(sample ? { sample } : {}) };
  }
  if (!stats.categories) return undefined;
  const { [MISSING_CATEGORY]: empty = 0, ...categories } = stats.categories;
  return { kind, rows, missing: stats.nulls + empty, categories };
}

/** A baseline profiled from raw training columns (what prepare's SQL computes, here in memory: tests and benchmarks). */
export function profileBaseline(column: { kind: 'numeric'; values: ArrayLike<number> } | { kind: 'categorical'; values: ArrayLike<string | null> }): FeatureBaseline {
  if (column.kind === 'numeric') {
    const edges = quantileEdges(column.values, 10);
    let missing = 0;
    for (let i = 0; i < column.values.length; i++) if (Number.isNaN(column.values[i]!)) missing++;
    return { kind: 'numeric', rows: column.values.length, missing, edges, histogram: histogram(column.values, edges), sample: column.values };
  }
  const { counts, missing } = countCategories(column.values);
  return { kind: 'categorical', rows: column.values.length, missing, categories: counts };
}

const f2 = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 0.01 || x === 0 ? x.toFixed(2) : x.toExponential(1));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
/** JSON has no NaN/Infinity: a figure that cannot be computed is 0 and says nothing (missingness is judged separately). */
const finite = (x: number) => (Number.isFinite(x) ? x : 0);

function numericFigures(b: NumericBaseline, values: ArrayLike<number>): MonitoringFeatureFigures {
  const hist = histogram(values, b.edges);
  let present = 0;
  for (const c of hist) present += c;
  const missing = values.length - present;
  const fig: MonitoringFeatureFigures = {
    kind: 'numeric',
    psi: present ? finite(psi(b.histogram, hist)) : 0,
    js: present ? finite(jensenShannon(b.histogram, hist)) : 0,
    missingFraction: values.length ? missing / values.length : 0,
    baselineMissingFraction: b.rows ? b.missing / b.rows : 0,
  };
  if (b.sample && present) {
    const ks = ks2(b.sample, values);
    if (Number.isFinite(ks.statistic)) Object.assign(fig, { ks: ks.statistic, ksPValue: finite(ks.pValue) });
  }
  return fig;
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

function categoricalFigures(b: CategoricalBaseline, w: { counts: Record<string, number>; missing: number }): MonitoringFeatureFigures {
  const kept = binnedCategories(b.categories);
  const { p, q } = alignCategorical(bucketed(b.categories, kept), bucketed(w.counts, kept));
  let present = 0;
  let unseen = 0;
  for (const [k, n] of Object.entries(w.counts)) {
    present += n;
    if (!Object.hasOwn(b.categories, k)) unseen += n;
  }
  const rows = present + w.missing;
  return {
    kind: 'categorical',
    psi: present ? finite(psi(p, q)) : 0,
    js: present ? finite(jensenShannon(p, q)) : 0,
    missingFraction: rows ? w.missing / rows : 0,
    baselineMissingFraction: b.rows ? b.missing / b.rows : 0,
    unseenFraction: rows ? unseen / rows : 0,
  };
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
export function predictionFigures(baseline: ArrayLike<number>, window: ArrayLike<number>): NonNullable<MonitoringReport['prediction']> | undefined {
  const b = withoutNaN(baseline);
  const w = withoutNaN(window);
  if (!b.length || !w.length) return undefined;
  const edges = quantileEdges(b, 10);
  const hb = histogram(b, edges);
  const hw = histogram(w, edges);
  return { psi: finite(psi(hb, hw)), js: finite(jensenShannon(hb, hw)), ks: finite(ks2(b, w).statistic), mean: mean(w), baselineMean: mean(b) };
}

export function performanceFigures(probs: ArrayLike<number>, labels: ArrayLike<number>, offline: DriftCheckInput['offline']): NonNullable<MonitoringReport['performance']> {
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

/** Figures and verdict for one window. */
export function checkDrift(input: DriftCheckInput): DriftCheckResult {
  const t = input.thresholds;
  const rows = input.window.rows;
  const labeledRows = input.labeled?.probs.length ?? 0;
  const act: string[] = [];
  const warn: string[] = [];
  const enoughRows = rows >= t.minRows;
  const enoughLabels = labeledRows >= t.minLabeledRows;

  const features: Record<string, MonitoringFeatureFigures> = {};
  for (const [name, b] of Object.entries(input.baseline)) {
    const w = input.window.features[name];
    if (!w) continue;
    const fig = b.kind === 'numeric' && w.kind === 'numeric' ? numericFigures(b, w.values) : b.kind === 'categorical' && w.kind === 'categorical' ? categoricalFigures(b, w) : undefined;
    if (!fig) continue;
    features[name] = fig;
    if (!enoughRows) continue;
    if (fig.psi >= t.psiAct) act.push(`${name} PSI ${f2(fig.psi)} ≥ ${t.psiAct}`);
    else if (fig.psi >= t.psiWarn) warn.push(`${name} PSI ${f2(fig.psi)} ≥ ${t.psiWarn}`);
    if (fig.js >= t.jsAct) act.push(`${name} JS distance ${f2(fig.js)} ≥ ${t.jsAct}`);
    if (fig.ks !== undefined && fig.ks >= t.ksAct) act.push(`${name} KS ${f2(fig.ks)} ≥ ${t.ksAct}`);
    const rise = fig.missingFraction - fig.baselineMissingFraction;
    if (rise > t.maxMissingIncrease) act.push(`${name} missing ${pct(fig.missingFraction)} vs ${pct(fig.baselineMissingFraction)} in training (+${pct(rise)} > ${pct(t.maxMissingIncrease)})`);
    if (fig.unseenFraction !== undefined && fig.unseenFraction > t.maxUnseenFraction) act.push(`${name} unseen categories ${pct(fig.unseenFraction)} > ${pct(t.maxUnseenFraction)}`);
  }

  const expected = input.schema?.expected ?? Object.keys(input.baseline);
  const keyRows = input.schema?.keyRows;
  // A key some rows lack is missing; only rows that were logged can tell, so an empty window says nothing.
  const missingInputs = keyRows && rows ? expected.filter((k) => (keyRows[k] ?? 0) < rows) : [];
  const unexpectedInputs = keyRows ? Object.keys(keyRows).filter((k) => !expected.includes(k)).sort() : [];
  const schemaChanged = missingInputs.length > 0 || unexpectedInputs.length > 0;
  if (missingInputs.length) act.push(`schema: inputs missing from logged rows: ${missingInputs.join(', ')}`);
  if (unexpectedInputs.length) act.push(`schema: unexpected inputs: ${unexpectedInputs.join(', ')}`);

  let prediction: DriftCheckResult['prediction'];
  if (input.prediction) {
    prediction = predictionFigures(input.prediction.baseline, input.prediction.window);
    if (prediction && enoughRows) {
      if (prediction.psi >= t.predictionPsiAct) act.push(`prediction PSI ${f2(prediction.psi)} ≥ ${t.predictionPsiAct}`);
      else if (prediction.psi >= t.psiWarn) warn.push(`prediction PSI ${f2(prediction.psi)} ≥ ${t.psiWarn}`);
    }
  }

  let performance: DriftCheckResult['performance'];
  if (input.labeled && labeledRows > 0) {
    performance = performanceFigures(input.labeled.probs, input.labeled.labels, input.offline);
    if (enoughLabels) {
      const p = performance;
      if (p.auc !== null && p.offlineAuc !== null && p.offlineAuc - p.auc > t.maxAucDrop) act.push(`AUC ${f2(p.auc)} vs ${f2(p.offlineAuc)} offline (drop ${f2(p.offlineAuc - p.auc)} > ${t.maxAucDrop})`);
      if (p.offlineLogLoss !== null && p.logLoss - p.offlineLogLoss > t.maxLogLossIncrease) act.push(`log loss ${f2(p.logLoss)} vs ${f2(p.offlineLogLoss)} offline (rise ${f2(p.logLoss - p.offlineLogLoss)} > ${t.maxLogLossIncrease})`);
      const gap = Math.abs(p.positiveRate - p.meanPrediction);
      if (gap > t.maxCalibrationGap) act.push(`calibration: positive rate ${pct(p.positiveRate)} vs mean prediction ${pct(p.meanPrediction)} (gap ${pct(gap)} > ${pct(t.maxCalibrationGap)})`);
    }
  }

  let level: DriftCheckResult['level'];
  let reasons: string[];
  if (!enoughRows && !enoughLabels) {
    level = 'insufficient-data';
    // Schema findings are listed, not acted on: the window stays open and the next check judges them with the rest.
    reasons = [`${rows} rows (< ${t.minRows}) and ${labeledRows} labelled rows (< ${t.minLabeledRows}): no verdict`, ...(schemaChanged ? act : [])];
  } else if (act.length) {
    level = 'act';
    reasons = [...act, ...warn];
  } else if (warn.length) {
    level = 'warn';
    reasons = warn;
  } else {
    level = 'ok';
    reasons = [];
  }
  return { rows, labeledRows, level, breach: level === 'act', reasons, features, quality: { missingInputs, unexpectedInputs, schemaChanged }, prediction, performance };
}
