import type { DuckDBConnection } from '@duckdb/node-api';
import { type ColumnKind, ident, kindOfDuckType } from './duck';
import { alignCategorical, jensenShannon, lInfinity, psi } from '../ml/drift';
import type { OverrideField } from '../../workflows/contracts/step-fix';
import { taskKind, type FeatureDef, type LabelDef } from '../../workflows/contracts/training-spec';

/**
 * Data validation in the manner of TFX's StatisticsGen + SchemaGen + ExampleValidator:
 * statistics of a span in two DuckDB scans, a schema inferred from the first span, checks of
 * every later span against it, and drift against the previous span. Pure over a DuckDB
 * connection: the activity (validate-activity.ts) brings the storage.
 */

export const DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/** String columns with more distinct values than this get no domain (IDs, free text). */
export const MAX_DOMAIN = 2000;
export const DRIFT_THRESHOLDS = { psi: 0.2, lInfinity: 0.1 };
/** Fewer rows than this make a model, or a test metric, that says nothing. */
export const MIN_TRAIN_ROWS = 50;
export const MIN_TEST_ROWS = 20;
/** The most classes a multiclass label may have: more is an identifier or a number, and every class costs a tree per round. */
export const MAX_CLASSES = 100;

export interface ColumnSchema {
  name: string;
  kind: ColumnKind;
  type: string;
  nullFraction: number;
  min?: number;
  max?: number;
  domain?: string[];
}

export interface DataSchema {
  columns: ColumnSchema[];
}

export interface ColumnStats {
  name: string;
  kind: ColumnKind;
  type: string;
  count: number;
  nulls: number;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  /** Decile cut points of this span: the bins the next span is compared on. */
  edges?: number[];
  /** Counts on the previous span's edges (only when there is a previous span). */
  histogram?: number[];
  /** Counts on this span's own edges: what the next span's `histogram` is compared with. */
  selfHistogram?: number[];
  distinct?: number;
  /** Value counts, for string columns with at most MAX_DOMAIN distinct values. */
  categories?: Record<string, number>;
}

export interface SpanStatistics {
  rows: number;
  columns: ColumnStats[];
  /** `positives` for a binary label only, `classes` (distinct values) for a multiclass one: a regression's label has no classes. */
  label?: { positives?: number; classes?: number; labelled: number; invalid: number };
}

export type AnomalyKind = 'empty' | 'missing-column' | 'extra-column' | 'type' | 'all-null' | 'null-fraction' | 'domain' | 'range' | 'label' | 'drift';

export interface Anomaly {
  column?: string;
  kind: AnomalyKind;
  severity: 'error' | 'warning';
  message: string;
  /** A difference in the columns themselves (added, removed, retyped) from the model's schema. */
  schemaChange?: boolean;
  /** The resume overrides that change what this error is about (another feature list, label, split or dataset). */
  fix?: OverrideField[];
}

export interface DriftFigure {
  column: string;
  psi: number;
  jensenShannon: number;
  lInfinity?: number;
}

export interface ValidationReport {
  rows: number;
  ok: boolean;
  anomalies: Anomaly[];
  drift: DriftFigure[];
  comparedWith?: string;
  labelRate?: number;
}

function num(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Statistics of every column of `source` (a DuckDB table expression) in two scans: one
 * aggregate pass for counts, ranges, moments, deciles and histograms on the previous span's
 * edges; one GROUPING SETS pass for the value counts of the string columns.
 */
export async function computeStatistics(
  c: DuckDBConnection,
  source: string,
  opts: { previous?: SpanStatistics; label?: LabelDef } = {},
): Promise<SpanStatistics> {
  const described = (await c.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjectsJson();
  const columns = described.map((r) => ({ name: String(r.column_name), type: String(r.column_type), kind: kindOfDuckType(String(r.column_type)) }));
  const usable = columns.filter((col) => /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(col.name));
  const select: string[] = ['count(*)::DOUBLE AS n'];
  usable.forEach((col, i) => {
    const q = ident(col.name);
    select.push(`count(${q})::DOUBLE AS c${i}`);
    if (col.kind === 'numeric') {
      select.push(`min(${q})::DOUBLE AS min${i}`, `max(${q})::DOUBLE AS max${i}`, `avg(${q})::DOUBLE AS mean${i}`, `stddev_pop(${q})::DOUBLE AS std${i}`);
      select.push(`to_json(approx_quantile(${q}::DOUBLE, [${DECILES.join(', ')}]))::VARCHAR AS q${i}`);
    } else if (col.kind === 'timestamp') {
      select.push(`epoch(min(${q}))::DOUBLE AS min${i}`, `epoch(max(${q}))::DOUBLE AS max${i}`);
    } else if (col.kind === 'string' || col.kind === 'boolean') {
      select.push(`approx_count_distinct(${q})::DOUBLE AS d${i}`);
    }
  });
  // The label's counts only when it is a column of a type they apply to: validateSpan words
  // what is wrong otherwise, where a scan of a missing column would fail with the engine's SQL.
  const multiclass = opts.label && taskKind(opts.label) === 'multiclass';
  const labelColumn = opts.label && usable.find((col) => col.name === opts.label!.column && (col.kind === 'numeric' || col.kind === 'boolean' || (multiclass && col.kind === 'string')));
  if (opts.label && labelColumn && multiclass) {
    const q = ident(opts.label.column);
    select.push(`count(${q})::DOUBLE AS label_n`, `count(DISTINCT ${q})::DOUBLE AS label_classes`);
    // A class is a string or an integer: a number with a fraction is a regression target given the wrong kind.
    const bad = labelColumn.kind === 'numeric' ? `count(*) FILTER (WHERE ${q} IS NOT NULL AND NOT (isfinite(${q}::DOUBLE) AND ${q}::DOUBLE = floor(${q}::DOUBLE)))` : '0';
    select.push(`${bad}::DOUBLE AS label_bad`);
  } else if (opts.label && labelColumn) {
    const q = ident(opts.label.column);
    select.push(`count(TRY_CAST(${q} AS DOUBLE))::DOUBLE AS label_n`);
    if (taskKind(opts.label) === 'regression') {
      // Any number is a target; what is not one (NaN, ±inf) cannot be learned from.
      select.push(`count(*) FILTER (WHERE ${q} IS NOT NULL AND NOT isfinite(TRY_CAST(${q} AS DOUBLE)))::DOUBLE AS label_bad`);
    } else {
      const positive = opts.label.greaterThan === undefined ? `TRY_CAST(${q} AS DOUBLE) = 1` : `TRY_CAST(${q} AS DOUBLE) > ${opts.label.greaterThan}`;
      select.push(`count(*) FILTER (WHERE ${positive})::DOUBLE AS label_pos`);
      select.push(
        opts.label.greaterThan === undefined
          ? `count(*) FILTER (WHERE ${q} IS NOT NULL AND coalesce(TRY_CAST(${q} AS DOUBLE) NOT IN (0, 1), true))::DOUBLE AS label_bad`
          : `count(*) FILTER (WHERE ${q} IS NOT NULL AND TRY_CAST(${q} AS DOUBLE) IS NULL)::DOUBLE AS label_bad`,
      );
    }
  }
  const row = (await c.runAndReadAll(`SELECT ${select.join(', ')} FROM ${source}`)).getRowObjectsJson()[0]!;
  const rows = num(row.n) ?? 0;
  const stats: ColumnStats[] = usable.map((col, i) => {
    const count = num(row[`c${i}`]) ?? 0;
    const s: ColumnStats = { name: col.name, kind: col.kind, type: col.type, count, nulls: rows - count };
    if (col.kind === 'numeric' || col.kind === 'timestamp') {
      s.min = num(row[`min${i}`]);
      s.max = num(row[`max${i}`]);
    }
    if (col.kind === 'numeric') {
      s.mean = num(row[`mean${i}`]);
      s.std = num(row[`std${i}`]);
      const q = row[`q${i}`];
      if (typeof q === 'string' && q !== 'null') s.edges = [...new Set((JSON.parse(q) as number[]).filter((x) => Number.isFinite(x)))].sort((a, b) => a - b);
    }
    if (col.kind === 'string' || col.kind === 'boolean') s.distinct = num(row[`d${i}`]);
    return s;
  });

  // Second pass, one GROUPING SETS query: value counts of the low-cardinality string columns,
  // and numeric columns binned on this span's deciles and on the previous span's.
  const groups: Array<{ expr: string; apply: (key: unknown, n: number) => void }> = [];
  for (const s of stats) {
    if ((s.kind === 'string' || s.kind === 'boolean') && (s.distinct ?? Infinity) <= MAX_DOMAIN * 1.1) {
      s.categories = {};
      groups.push({ expr: `${ident(s.name)}::VARCHAR`, apply: (k, n) => k !== null && k !== undefined && (s.categories![String(k)] = n) });
    }
    if (s.kind === 'numeric' && s.edges?.length) {
      const own = s.edges;
      s.selfHistogram = new Array<number>(own.length + 1).fill(0);
      groups.push({ expr: binExpr(s.name, own), apply: (k, n) => k !== null && k !== undefined && (s.selfHistogram![Number(k)] = n) });
    }
    const prevEdges = opts.previous?.columns.find((p) => p.name === s.name && p.kind === 'numeric' && s.kind === 'numeric')?.edges;
    if (prevEdges?.length) {
      s.histogram = new Array<number>(prevEdges.length + 1).fill(0);
      groups.push({ expr: binExpr(s.name, prevEdges), apply: (k, n) => k !== null && k !== undefined && (s.histogram![Number(k)] = n) });
    }
  }
  if (groups.length && rows > 0) {
    const cols = groups.map((g, k) => `${g.expr} AS v${k}`).join(', ');
    const sets = groups.map((_, k) => `(v${k})`).join(', ');
    const flags = groups.map((_, k) => `grouping(v${k}) AS g${k}`).join(', ');
    const result = await c.runAndReadAll(`SELECT ${groups.map((_, k) => `v${k}`).join(', ')}, count(*)::DOUBLE AS n, ${flags} FROM (SELECT ${cols} FROM ${source}) GROUP BY GROUPING SETS (${sets})`);
    for (const r of result.getRowObjectsJson()) {
      const k = groups.findIndex((_, j) => Number(r[`g${j}`]) === 0);
      if (k >= 0) groups[k]!.apply(r[`v${k}`], Number(r.n));
    }
    for (const s of stats) if (s.categories && Object.keys(s.categories).length > MAX_DOMAIN) delete s.categories;
  }
  const out: SpanStatistics = { rows, columns: stats };
  if (opts.label && labelColumn) {
    // Counts always come back (0, not NULL): a missing one is a broken query, never "no rows".
    const count = (key: string) => {
      const n = num(row[key]);
      if (n === undefined) throw new Error(`statistics: the scan returned no ${key} for label ${opts.label!.column}`);
      return n;
    };
    const kind = taskKind(opts.label);
    out.label = { labelled: count('label_n'), invalid: count('label_bad'), ...(kind === 'binary' ? { positives: count('label_pos') } : {}), ...(kind === 'multiclass' ? { classes: count('label_classes') } : {}) };
  }
  return out;
}

export function inferSchema(stats: SpanStatistics): DataSchema {
  return {
    columns: stats.columns.map((s) => ({
      name: s.name,
      kind: s.kind,
      type: s.type,
      nullFraction: stats.rows ? s.nulls / stats.rows : 0,
      ...(s.kind === 'numeric' ? { min: s.min, max: s.max } : {}),
      ...(s.categories ? { domain: Object.keys(s.categories).sort() } : {}),
    })),
  };
}

/** The schema's identity: the same inferred schema twice is the same version. */
export function schemaFingerprint(schema: DataSchema): string {
  return JSON.stringify(schema.columns.map((c) => [c.name, c.kind, c.domain?.length ?? 0]));
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.01 ? 3 : 1)}%`;

/**
 * Checks a span: against what the task needs (always), against the schema (when one exists),
 * and for drift against the previous span. Errors stop the pipeline; warnings are recorded.
 */
export function validateSpan(input: {
  stats: SpanStatistics;
  schema?: DataSchema;
  previous?: SpanStatistics;
  features: FeatureDef[];
  label: LabelDef;
  splitColumn?: string;
  /** A changed schema stops the run (default) or is accepted as the model's next schema version. */
  schemaChange?: 'stop' | 'accept';
}): ValidationReport {
  const { stats, schema, previous } = input;
  const change = (a: Omit<Anomaly, 'severity'>) => anomalies.push({ ...a, schemaChange: true, severity: input.schemaChange === 'accept' ? 'warning' : 'error' });
  const anomalies: Anomaly[] = [];
  const err = (a: Omit<Anomaly, 'severity'>) => anomalies.push({ ...a, severity: 'error' });
  const warn = (a: Omit<Anomaly, 'severity'>) => anomalies.push({ ...a, severity: 'warning' });
  const byName = new Map(stats.columns.map((c) => [c.name, c]));

  if (stats.rows === 0) err({ kind: 'empty', fix: ['dataset'], message: 'the dataset has no rows' });

  // What the task reads must be there, of a usable type, and not empty.
  const needs = new Map<string, { kinds: ColumnKind[]; what: string; fix: OverrideField[] }>();
  for (const f of input.features) {
    const col = f.column ?? f.name;
    const fix: OverrideField[] = ['features', 'dataset'];
    if (f.transform) needs.set(col, { kinds: ['timestamp'], what: `feature ${f.name} (${f.transform} of a timestamp)`, fix });
    else if (f.kind === 'numeric') needs.set(col, { kinds: ['numeric', 'boolean'], what: `numeric feature ${f.name}`, fix });
    else needs.set(col, { kinds: ['string', 'numeric', 'boolean'], what: `categorical feature ${f.name}`, fix });
  }
  const labelFix: OverrideField[] = ['label', 'dataset'];
  const kind = taskKind(input.label);
  const labelNeeds = { regression: { kinds: ['numeric'], what: 'the label, a regression target' }, multiclass: { kinds: ['string', 'numeric', 'boolean'], what: 'the label, a class' }, binary: { kinds: ['numeric', 'boolean'], what: 'the label' } } as const;
  needs.set(input.label.column, { kinds: [...labelNeeds[kind].kinds], what: labelNeeds[kind].what, fix: labelFix });
  if (input.splitColumn) needs.set(input.splitColumn, { kinds: ['timestamp', 'numeric'], what: 'the time split', fix: ['split', 'dataset'] });
  for (const [col, need] of needs) {
    const s = byName.get(col);
    const fix = need.fix;
    if (!s) {
      err({ column: col, kind: 'missing-column', fix, message: `column ${col} (${need.what}) is missing; the data has ${[...byName.keys()].join(', ') || 'no columns'}` });
      continue;
    }
    if (!need.kinds.includes(s.kind)) {
      const labelHint =
        col !== input.label.column
          ? ''
          : kind === 'regression'
            ? ' (a regression predicts a number: a numeric column)'
            : kind === 'multiclass'
              ? ' (a multiclass label is a string, integer or boolean column)'
              : ' (binary classification: a 0/1 or boolean column, or a numeric one with label.greaterThan; label.kind multiclass predicts one of several classes, label.kind regression a number)';
      err({ column: col, kind: 'type', fix, message: `column ${col} (${need.what}) is ${s.type}; expected ${need.kinds.join(' or ')}${labelHint}` });
    } else if (stats.rows > 0 && s.count === 0) err({ column: col, kind: 'all-null', fix, message: `column ${col} (${need.what}) has no values: all ${stats.rows} rows are null` });
  }
  const labelStats = byName.get(input.label.column);
  if (!stats.label && stats.rows > 0 && labelStats?.count && (labelNeeds[kind].kinds as readonly string[]).includes(labelStats.kind)) {
    // A usable label without its counts: nothing shows it has two classes and enough rows.
    err({ column: input.label.column, kind: 'label', fix: labelFix, message: `label ${input.label.column}: no label statistics were computed for it` });
  }
  if (stats.label && stats.rows > 0 && labelStats?.count) {
    const { positives, classes, labelled, invalid } = stats.label;
    if (kind === 'binary' && positives === undefined) throw new Error(`statistics: no positive count for the binary label ${input.label.column}`);
    if (kind === 'multiclass' && classes === undefined) throw new Error(`statistics: no class count for the multiclass label ${input.label.column}`);
    if (invalid > 0) {
      const why =
        kind === 'regression'
          ? 'are not finite numbers (NaN or infinite)'
          : kind === 'multiclass'
            ? 'are not whole numbers: a class is a string or an integer (label.kind regression predicts a number)'
            : 'are not 0/1 (binary classification: give label.greaterThan to turn a numeric column into two classes, label.kind multiclass to predict each value as a class, or label.kind regression to predict the number)';
      err({ column: input.label.column, kind: 'label', fix: labelFix, message: `label ${input.label.column}: ${invalid} rows ${why}` });
    } else if (kind === 'multiclass' && classes! < 2) {
      err({ column: input.label.column, kind: 'label', fix: labelFix, message: `label ${input.label.column}: a single class in ${labelled} labelled rows; a multiclass task needs at least two` });
    } else if (kind === 'multiclass' && classes! > MAX_CLASSES) {
      err({
        column: input.label.column,
        kind: 'label',
        fix: labelFix,
        message: `label ${input.label.column}: ${classes} distinct values; a multiclass task takes at most ${MAX_CLASSES} classes (an identifier? label.kind regression predicts a number)`,
      });
    } else if (kind === 'binary' && (positives === 0 || positives === labelled)) {
      err({ column: input.label.column, kind: 'label', fix: labelFix, message: `label ${input.label.column}: a single class (${positives} positive of ${labelled}); training needs both` });
    } else if (kind === 'regression' && labelStats.min !== undefined && labelStats.min === labelStats.max) {
      err({ column: input.label.column, kind: 'label', fix: labelFix, message: `label ${input.label.column}: every row holds ${labelStats.min}; a regression needs a target that varies` });
    } else if (labelled < MIN_TRAIN_ROWS + MIN_TEST_ROWS) {
      err({
        column: input.label.column,
        kind: 'empty',
        fix: ['dataset'],
        message: `too few rows: ${labelled} labelled rows; training needs at least ${MIN_TRAIN_ROWS} and the test split at least ${MIN_TEST_ROWS}`,
      });
    }
  }

  if (schema) {
    for (const sc of schema.columns) {
      const s = byName.get(sc.name);
      if (!s) {
        if (!needs.has(sc.name)) change({ column: sc.name, kind: 'missing-column', message: `column ${sc.name} of the schema is missing (not used by this task)` });
        continue;
      }
      if (s.kind !== sc.kind) {
        if (!anomalies.some((a) => a.column === sc.name && a.kind === 'type')) change({ column: sc.name, kind: 'type', message: `column ${sc.name} is ${s.type}; the schema says ${sc.type}` });
        continue;
      }
      const nullFraction = stats.rows ? s.nulls / stats.rows : 0;
      if (nullFraction > sc.nullFraction + 0.05 && nullFraction > 2 * sc.nullFraction) {
        warn({ column: sc.name, kind: 'null-fraction', message: `column ${sc.name}: ${pct(nullFraction)} null; the schema allows about ${pct(sc.nullFraction)}` });
      }
      if (sc.domain && s.categories) {
        const domain = new Set(sc.domain);
        const unseen = Object.entries(s.categories).filter(([v]) => !domain.has(v));
        const share = unseen.reduce((a, [, n]) => a + n, 0) / Math.max(1, s.count);
        if (share > 0.001) {
          warn({
            column: sc.name,
            kind: 'domain',
            message: `column ${sc.name}: ${pct(share)} of values outside the schema's domain (${unseen
              .sort((a, b) => b[1] - a[1])
              .slice(0, 5)
              .map(([v]) => JSON.stringify(v))
              .join(', ')}${unseen.length > 5 ? ', …' : ''})`,
          });
        }
      }
      if (sc.kind === 'numeric' && s.min !== undefined && s.max !== undefined && sc.min !== undefined && sc.max !== undefined && (s.min < sc.min || s.max > sc.max)) {
        warn({ column: sc.name, kind: 'range', message: `column ${sc.name}: values in [${s.min}, ${s.max}] exceed the schema's range [${sc.min}, ${sc.max}]` });
      }
    }
    for (const s of stats.columns) {
      if (!schema.columns.some((sc) => sc.name === s.name)) change({ column: s.name, kind: 'extra-column', message: `column ${s.name} is not in the schema` });
    }
  }

  const drift: DriftFigure[] = [];
  if (previous && stats.rows > 0) {
    for (const s of stats.columns) {
      const p = previous.columns.find((x) => x.name === s.name && x.kind === s.kind);
      if (!p) continue;
      let figure: DriftFigure | undefined;
      if (s.kind === 'numeric' && s.histogram && p.edges?.length) {
        const expected = p.selfHistogram;
        if (expected) figure = { column: s.name, psi: psi(expected, s.histogram), jensenShannon: jensenShannon(expected, s.histogram) };
      } else if (s.categories && p.categories) {
        const a = alignCategorical(p.categories, s.categories);
        figure = { column: s.name, psi: psi(a.p, a.q), jensenShannon: jensenShannon(a.p, a.q), lInfinity: lInfinity(p.categories, s.categories) };
      }
      if (!figure) continue;
      drift.push(figure);
      if (figure.psi >= DRIFT_THRESHOLDS.psi || (figure.lInfinity ?? 0) >= DRIFT_THRESHOLDS.lInfinity) {
        warn({
          column: s.name,
          kind: 'drift',
          message: `column ${s.name} drifted from the previous span: PSI ${figure.psi.toFixed(3)}${figure.lInfinity !== undefined ? `, L∞ ${figure.lInfinity.toFixed(3)}` : ''}, JS ${figure.jensenShannon.toFixed(3)}`,
        });
      }
    }
  }
  const labelRate = stats.label?.positives !== undefined && stats.label.labelled ? stats.label.positives / stats.label.labelled : undefined;
  return { rows: stats.rows, ok: !anomalies.some((a) => a.severity === 'error'), anomalies, drift, labelRate };
}

/**
 * Bin index of a numeric column on sorted upper edges (0 for ≤ e0 … edges.length above the last):
 * a sum of comparisons, which DuckDB vectorises far better than a CASE chain. NULL stays NULL.
 */
function binExpr(column: string, edges: number[]): string {
  const q = ident(column);
  return `(${edges.map((e) => `(${q} > ${e})::UTINYINT`).join(' + ')})`;
}

