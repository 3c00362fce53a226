import type { MonitoringReport, MonitoringThresholds } from '../../../workflows/contracts/lifecycle';
import type { TaskKind } from '../../../workflows/contracts/training-spec';
import type { ColumnStats } from '../../data/validate';
import type { ClassList } from '../dataset';
import { histogram, quantileEdges } from '../drift';
import { MONITORING_CHECKS, type CheckContext } from './checks';
import type { ClassCounts, LabeledClasses } from './figures';

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
  /** What the model predicts (absent: binary); it decides which performance figures labels give. */
  task?: TaskKind;
  /** The model's scores on its test split vs the window's served scores (NaN skipped): probabilities, or a regression's predictions. */
  prediction?: { baseline: ArrayLike<number>; window: ArrayLike<number> };
  /** Predictions whose label arrived: probabilities with 0/1 labels, or a regression's predictions with their targets. */
  labeled?: { scores: ArrayLike<number>; labels: ArrayLike<number> };
  /** The version's figures on its test split. */
  offline?: { auc: number | null; logLoss: number | null; rmse?: number | null; mae?: number | null; accuracy?: number | null; macroF1?: number | null };
  /** A multiclass version's window in its classes' terms (classCounts, labeledClasses); `prediction` and `labeled` are not read for it. */
  multiclass?: MulticlassWindow;
  /** Input keys the window's rows carried (key → rows), against the model's input signature. */
  schema?: { expected: string[]; keyRows: Record<string, number> };
}

export interface MulticlassWindow {
  classes: ClassList;
  /** Test rows predicted as each class (the version's metrics); absent or not one count per class: no prediction PSI. */
  offlineHistogram?: ArrayLike<number>;
  served: ClassCounts;
  labeled: LabeledClasses;
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

export {
  binnedCategories,
  classCounts,
  classPredictionFigures,
  labeledClasses,
  MAX_CATEGORY_BINS,
  MIN_CATEGORY_SHARE,
  multiclassPerformanceFigures,
  multiclassRow,
  OTHER_CATEGORY,
  performanceFigures,
  predictionFigures,
  regressionPerformanceFigures,
  type ClassCounts,
  type LabeledClasses,
} from './figures';

/** Labelled rows of the window: a multiclass version's come in its classes' terms, the others' as score/label pairs. */
function labeledRowsOf(input: DriftCheckInput): number {
  if (input.task === 'multiclass') {
    // The activity always reads the window's labels: a window without them is a broken read, never "no labelled rows".
    if (!input.multiclass) throw new RangeError('checkDrift: a multiclass check needs its window in the classes\' terms (multiclass)');
    const l = input.multiclass.labeled;
    const k = input.multiclass.classes.length;
    if (l.probabilities.length !== l.labels.length * k) throw new RangeError(`checkDrift: ${l.probabilities.length} labelled probabilities for ${l.labels.length} labels of ${k} classes`);
    return l.labels.length;
  }
  // An empty read is truly no labelled rows (performance gets no verdict, never a pass); no read at all is a broken caller.
  if (!input.labeled) throw new RangeError('checkDrift: no labelled predictions were read (give an empty pair when none arrived)');
  if (input.labeled.scores.length !== input.labeled.labels.length) throw new RangeError(`checkDrift: ${input.labeled.scores.length} labelled scores for ${input.labeled.labels.length} labels`);
  return input.labeled.scores.length;
}

/**
 * Figures and verdict for one window: every check of the registry (checks/index.ts) adds its
 * figures and reasons; the verdict is the worst of them, or none on a window too thin to judge.
 */
export function checkDrift(input: DriftCheckInput): DriftCheckResult {
  const t = input.thresholds;
  const rows = input.window.rows;
  const labeledRows = labeledRowsOf(input);
  const ctx: CheckContext = {
    input,
    thresholds: t,
    rows,
    labeledRows,
    enoughRows: rows >= t.minRows,
    enoughLabels: labeledRows >= t.minLabeledRows,
    act: [],
    warn: [],
    figures: { features: {}, quality: { missingInputs: [], unexpectedInputs: [], schemaChanged: false } },
  };
  for (const check of MONITORING_CHECKS) check.run(ctx);
  const { act, warn, figures } = ctx;

  let level: DriftCheckResult['level'];
  let reasons: string[];
  if (!ctx.enoughRows && !ctx.enoughLabels) {
    level = 'insufficient-data';
    // Schema findings are listed, not acted on: the window stays open and the next check judges them with the rest.
    reasons = [`${rows} rows (< ${t.minRows}) and ${labeledRows} labelled rows (< ${t.minLabeledRows}): no verdict`, ...(figures.quality.schemaChanged ? act : [])];
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
  return { rows, labeledRows, level, breach: level === 'act', reasons, features: figures.features, quality: figures.quality, prediction: figures.prediction, performance: figures.performance };
}
