import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withDuckDb } from '../activities/data/duck';
import { loadTable, prepareData } from '../activities/data/prepare';
import { flightsParquetPath } from '../activities/data/snapshot';
import type { Table } from '../activities/ml/dataset';
import { trainGbdt, type GbdtParams } from '../activities/ml/gbdt';
import { LocalArtifactStore } from '../infra/artifacts';
import { PRESETS } from '../workflows/contracts/training-spec';

/**
 * GBDT training time against rows, on the full flights data (≈3M rows, 2001): the first 100k,
 * 500k and all rows, same parameters as the xgboost comparison. Time per row should stay flat
 * (within 20%): histograms, partitions and gradients are all linear in the rows.
 */

export interface GbdtScalingRow {
  rows: number;
  seconds: number;
  microsPerRow: number;
  /** CPU time of the process (all its threads): steadier than wall time on a shared machine. */
  cpuSeconds: number;
  cpuMicrosPerRow: number;
}

export interface GbdtScalingFigures {
  threads: number;
  params: Partial<GbdtParams>;
  rows: GbdtScalingRow[];
  /** Largest ÷ smallest time per row: ≤ 1.2 is flat. */
  perRowSpread: number;
}

export const SCALING_PARAMS: Partial<GbdtParams> = { rounds: 100, maxDepth: 6, learningRate: 0.1, maxBins: 255, lambda: 1, minChildWeight: 1 };

/** The first `k` rows of a table (views, no copies of numeric columns). */
export function headRows(t: Table, k: number): Table {
  if (k >= t.rows) return t;
  const numeric = Object.fromEntries(Object.entries(t.numeric).map(([n, c]) => [n, c.subarray(0, k)]));
  const categorical = Object.fromEntries(Object.entries(t.categorical).map(([n, c]) => [n, c.slice(0, k)]));
  return { ...t, rows: k, numeric, categorical, label: t.label.subarray(0, k) };
}

/** Both splits as one table: the train split's rows first. */
function concatRows(a: Table, b: Table): Table {
  const numeric = Object.fromEntries(
    Object.keys(a.numeric).map((n) => {
      const out = new Float32Array(a.rows + b.rows);
      out.set(a.numeric[n]!);
      out.set(b.numeric[n]!, a.rows);
      return [n, out];
    }),
  );
  const categorical = Object.fromEntries(Object.keys(a.categorical).map((n) => [n, [...a.categorical[n]!, ...b.categorical[n]!]]));
  const label = new Uint8Array(a.rows + b.rows);
  label.set(a.label);
  label.set(b.label, a.rows);
  return { rows: a.rows + b.rows, features: a.features, numeric, categorical, label };
}

/** The prepared flights data (both splits, ≈3M rows) as one table. */
export async function flightsTable(): Promise<Table> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-bench-gbdt-'));
  try {
    const store = new LocalArtifactStore(path.join(dir, 'store'));
    await store.ensureReady();
    const task = PRESETS['flights-delay'];
    const prepared = await prepareData(store, flightsParquetPath(), { snapshot: { uri: '', sha256: '' }, features: task.features, label: task.label, split: task.split, seed: 42 }, dir);
    const [train, test] = await withDuckDb(async (c) => [await loadTable(path.join(dir, 'train.parquet'), prepared.features, c), await loadTable(path.join(dir, 'test.parquet'), prepared.features, c)]);
    return concatRows(train, test);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Trains on 100k, 500k and all rows (`table` defaults to the flights data), `threads` threads. */
export async function gbdtScaling(opts: { threads?: number; sizes?: number[]; table?: Table } = {}): Promise<GbdtScalingFigures> {
  const threads = opts.threads ?? 2;
  const table = opts.table ?? (await flightsTable());
  const sizes = (opts.sizes ?? [100_000, 500_000, table.rows]).map((k) => Math.min(k, table.rows));
  const rows: GbdtScalingRow[] = [];
  // Untimed: the first run of a process also pays for compiling the hot loops.
  trainGbdt(headRows(table, 20_000), { ...SCALING_PARAMS, rounds: 10 }, { threads });
  for (const k of sizes) {
    const t = headRows(table, k);
    const started = performance.now();
    const cpu = process.cpuUsage();
    trainGbdt(t, SCALING_PARAMS, { threads });
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    rows.push({ rows: k, seconds, microsPerRow: (seconds * 1e6) / k, cpuSeconds, cpuMicrosPerRow: (cpuSeconds * 1e6) / k });
  }
  const perRow = rows.map((r) => r.microsPerRow);
  return { threads, params: SCALING_PARAMS, rows, perRowSpread: Math.max(...perRow) / Math.min(...perRow) };
}
