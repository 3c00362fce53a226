import type { DuckDBConnection } from '@duckdb/node-api';
import { ident, literal, withDuckDb } from '../activities/data/duck';
import { flightsParquetPath } from '../activities/data/snapshot';
import { checkDrift, countCategories, profileBaseline, type FeatureBaseline, type NumericBaseline } from '../activities/ml/monitoring/drift-check';
import { quantile } from '../activities/ml/metrics';
import { monitoringThresholds } from '../workflows/contracts/lifecycle';

/**
 * The monitoring check's pure drift computation on real flights traffic — one month as the
 * training baseline, another as the served window, 5 features — against ONE DuckDB scan of the
 * same rows computing the same per-feature histograms and category counts: how much the check
 * costs beyond merely reading the data in a columnar engine.
 */

export interface DriftBenchOptions {
  /** Rows per side (the baseline month and the window month). */
  rows?: number;
  reps?: number;
  /** Months of 2001. February has only 458k flights, so the default window is March. */
  baselineMonth?: number;
  windowMonth?: number;
}

export interface DriftBenchResult {
  rows: number;
  features: number;
  /** checkDrift on precomputed baseline statistics (as the activity runs it), window columns raw: median ms. */
  driftMs: number;
  /** One aggregate DuckDB query over both samples: median ms. */
  duckdbMs: number;
  driftRatio: number;
  /** Profiling the baseline side in memory (edges, histograms, category counts; the activity reads these from `prepare`): median ms. */
  baselineMs: number;
  reasons: string[];
}

const NUMERIC = ['hour', 'dayofweek', 'distance'] as const;
const CATEGORICAL = ['origin', 'destination'] as const;

interface Sample {
  numeric: Record<(typeof NUMERIC)[number], Float64Array>;
  categorical: Record<(typeof CATEGORICAL)[number], string[]>;
}

const SELECT = `hour("date")::DOUBLE AS hour, dayofweek("date")::DOUBLE AS dayofweek, distance::DOUBLE AS distance, origin::VARCHAR AS origin, destination::VARCHAR AS destination`;

/** The first `rows` flights of a month, in file order: the same rows every run. */
function monthRows(month: number, rows: number): string {
  return `SELECT ${SELECT} FROM read_parquet(${literal(flightsParquetPath())}, file_row_number = true) WHERE month("date") = ${month} ORDER BY file_row_number LIMIT ${rows}`;
}

async function readSample(c: DuckDBConnection, month: number, rows: number): Promise<Sample> {
  const r = await c.runAndReadAll(monthRows(month, rows));
  if (r.currentRowCount < rows) throw new Error(`month ${month} of 2001 has only ${r.currentRowCount} flights; the benchmark needs ${rows}`);
  const cols = r.getColumns();
  const num = (j: number) => Float64Array.from(cols[j]!, (v) => (v === null ? NaN : Number(v)));
  const str = (j: number) => cols[j]!.map((v) => (v === null ? '' : String(v)));
  return { numeric: { hour: num(0), dayofweek: num(1), distance: num(2) }, categorical: { origin: str(3), destination: str(4) } };
}

function binExpr(column: string, edges: number[]): string {
  return edges.length ? `(${edges.map((e) => `(${ident(column)} > ${e})::UTINYINT`).join(' + ')})` : '0';
}

async function time(reps: number, fn: () => unknown): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return quantile(xs, 0.5);
}

export async function benchDrift(opts: DriftBenchOptions = {}): Promise<DriftBenchResult> {
  const rows = opts.rows ?? 500_000;
  const reps = opts.reps ?? 5;
  const [bm, wm] = [opts.baselineMonth ?? 1, opts.windowMonth ?? 3];
  const thresholds = monitoringThresholds.parse({});

  return withDuckDb(async (c) => {
    const [train, served] = [await readSample(c, bm, rows), await readSample(c, wm, rows)];
    const profile = (): Record<string, FeatureBaseline> => ({
      ...Object.fromEntries(NUMERIC.map((f) => [f, profileBaseline({ kind: 'numeric', values: train.numeric[f] })])),
      ...Object.fromEntries(CATEGORICAL.map((f) => [f, profileBaseline({ kind: 'categorical', values: train.categorical[f] })])),
    });
    const baselineMs = await time(reps, profile);
    const baseline = profile();

    let reasons: string[] = [];
    const driftMs = await time(reps, () => {
      const result = checkDrift({
        thresholds,
        baseline,
        window: {
          rows,
          features: {
            ...Object.fromEntries(NUMERIC.map((f) => [f, { kind: 'numeric' as const, values: served.numeric[f] }])),
            ...Object.fromEntries(CATEGORICAL.map((f) => [f, { kind: 'categorical' as const, ...countCategories(served.categorical[f]) }])),
          },
        },
      });
      reasons = result.reasons;
    });

    // Both samples in one in-memory table, then one scan: each side's histograms on the baseline
    // deciles and its category counts — the data a drift check needs, with no statistics on top.
    await c.run(`CREATE TEMP TABLE bench_rows AS SELECT 0 AS side, * FROM (${monthRows(bm, rows)}) UNION ALL SELECT 1 AS side, * FROM (${monthRows(wm, rows)})`);
    const bins = NUMERIC.map((f) => `histogram(${binExpr(f, (baseline[f] as NumericBaseline).edges)}) AS ${f}`);
    const cats = CATEGORICAL.map((f) => `histogram(${ident(f)}) AS ${f}`);
    const query = `SELECT side, count(*) AS n, ${[...bins, ...cats].join(', ')} FROM bench_rows GROUP BY side`;
    const duckdbMs = await time(reps, () => c.runAndReadAll(query));

    return { rows, features: NUMERIC.length + CATEGORICAL.length, driftMs, duckdbMs, driftRatio: driftMs / duckdbMs, baselineMs, reasons };
  });
}

if (require.main === module) {
  benchDrift().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
