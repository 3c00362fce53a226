import fs from 'node:fs/promises';
import path from 'node:path';
import { ident, literal, withDuckDb } from '../../activities/data/duck';
import { epochExpr, featureExpr, featureSpecs } from '../../activities/data/prepare';
import { modelInputs } from '../../activities/ml/model-inputs';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { PRESETS } from '../../workflows/contracts/training-spec';

/**
 * The months the demo replays, read from the bundled flights data with DuckDB: a deterministic
 * sample per month as the served model takes it (its raw columns: the model derives the time
 * features itself), and each month's full file as "new data".
 */

export const TASK = PRESETS['flights-delay'];

export type FeatureValue = number | string;
export interface ReplayRow {
  /** ISO time of the flight: the order rows are replayed in. */
  date: string;
  /** The model's inputs by name: raw columns, a timestamp as epoch seconds (see modelInputs). */
  features: Record<string, FeatureValue>;
  label: 0 | 1;
}

export interface MonthSample {
  month: string;
  /** The sample replayed during the month, in time order. */
  rows: ReplayRow[];
  /** More rows of the same month, for traffic while the stack is still busy after the last month. */
  extra: ReplayRow[];
  /** Figures of the whole month (not the sample), for the report. */
  fullRows: number;
  fullPositiveRate: number;
}

function monthBounds(month: string): { start: string; end: string } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const end = m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, '0')}-01`;
  return { start: `${month}-01`, end };
}

function monthWhere(month: string): string {
  const { start, end } = monthBounds(month);
  return `"date" >= TIMESTAMP '${start}' AND "date" < TIMESTAMP '${end}'`;
}

export function monthsBetween(from: string, to: string): string[] {
  const out: string[] = [];
  let [y, m] = from.split('-').map(Number) as [number, number];
  for (;;) {
    const cur = `${y}-${String(m).padStart(2, '0')}`;
    if (cur > to) break;
    out.push(cur);
    m++;
    if (m > 12) {
      m = 1;
      y++;
    }
  }
  return out;
}

export async function loadMonthSamples(months: string[], rows: number, seed: number): Promise<MonthSample[]> {
  const file = literal(flightsParquetPath());
  const inputs = modelInputs(featureSpecs(TASK.features));
  const label = TASK.label;
  return withDuckDb(async (c) => {
    const out: MonthSample[] = [];
    for (const month of months) {
      // What the served model takes: each raw column, a timestamp as epoch seconds.
      const select = inputs.map((i) => `${i.datatype === 'INT64' ? epochExpr(i.name) : featureExpr(TASK.features.find((f) => f.name === i.name)!)} AS ${ident(i.name)}`).join(', ');
      // The same row-hash sampling as prepare.ts (hash of the row number and the seed).
      const sql = `SELECT strftime("date", '%Y-%m-%dT%H:%M:%S') AS d, ${select}, (TRY_CAST("${label.column}" AS DOUBLE) > ${label.greaterThan ?? 0.5})::INT AS y
        FROM read_parquet(${file}, file_row_number = true)
        WHERE ${monthWhere(month)} AND "${label.column}" IS NOT NULL
        ORDER BY hash(file_row_number + ${seed} * 1000003) LIMIT ${rows * 2}`;
      const got = (await c.runAndReadAll(sql)).getRowObjectsJson();
      const toRow = (r: Record<string, unknown>): ReplayRow => ({
        date: String(r.d),
        features: Object.fromEntries(inputs.map((i) => [i.name, i.datatype === 'BYTES' ? String(r[i.name]) : Number(r[i.name])])),
        label: Number(r.y) === 1 ? 1 : 0,
      });
      const byTime = (a: ReplayRow, b: ReplayRow) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0);
      const full = (
        await c.runAndReadAll(
          `SELECT count(*)::DOUBLE AS n, avg((TRY_CAST("${label.column}" AS DOUBLE) > ${label.greaterThan ?? 0.5})::INT)::DOUBLE AS rate FROM read_parquet(${file}) WHERE ${monthWhere(month)} AND "${label.column}" IS NOT NULL`,
        )
      ).getRowObjectsJson()[0]!;
      out.push({
        month,
        rows: got.slice(0, rows).map(toRow).sort(byTime),
        extra: got.slice(rows).map(toRow).sort(byTime),
        fullRows: Number(full.n),
        fullPositiveRate: Number(full.rate),
      });
    }
    return out;
  });
}

/**
 * The month's raw rows (date, delay, distance, origin, destination) as one parquet file in
 * `dir`. Written beside it and renamed in, so a watcher listing `dir` never sees half a file.
 */
export async function writeMonthFile(month: string, dir: string, scratch: string): Promise<string> {
  const out = path.join(dir, `flights-${month}.parquet`);
  await fs.mkdir(scratch, { recursive: true });
  const tmp = path.join(scratch, `flights-${month}.parquet.part`);
  await withDuckDb(async (c) => {
    await c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE ${monthWhere(month)}) TO ${literal(tmp)} (FORMAT parquet, COMPRESSION zstd)`);
  });
  await fs.rename(tmp, out);
  return out;
}

export function monthLabel(month: string): string {
  return ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][Number(month.slice(5, 7)) - 1]!;
}
