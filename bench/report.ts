import fs from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/paths';

/** A bound on a row's ratio; a row without a ratio to check fails its target. */
export interface Target {
  label: string;
  met(ratio: number): boolean;
}

export const atMost = (bound: number): Target => ({ label: `≤ ${bound}`, met: (r) => r <= bound });
export const atLeast = (bound: number): Target => ({ label: `≥ ${bound}`, met: (r) => r >= bound });
export const withinAbs = (bound: number): Target => ({ label: `|Δ| ≤ ${bound}`, met: (r) => Math.abs(r) <= bound });

/** One line of the bench table: our figure beside the same-run baseline it is read against. */
export interface BenchRow {
  measure: string;
  ours: string;
  baseline?: string;
  /** ours ÷ baseline (or the difference, for a `withinAbs` target); undefined when not measured. */
  ratio?: number;
  target?: Target;
}

export interface ReportedRow {
  measure: string;
  ours: string;
  baseline: string;
  ratio: number | null;
  target: string;
  /** null: a figure with no target, reported for reading only. */
  pass: boolean | null;
}

export function reportRow(row: BenchRow): ReportedRow {
  const ratio = row.ratio !== undefined && Number.isFinite(row.ratio) ? row.ratio : null;
  return {
    measure: row.measure,
    ours: row.ours,
    baseline: row.baseline ?? '',
    ratio,
    target: row.target?.label ?? '',
    pass: row.target ? ratio !== null && row.target.met(ratio) : null,
  };
}

const cell = (r: ReportedRow) => [r.measure, r.ours, r.baseline, r.ratio === null ? '' : formatRatio(r.ratio), r.target, r.pass === null ? '' : r.pass ? 'yes' : '**no**'];

function formatRatio(x: number): string {
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 0.1 ? x.toFixed(2) : x.toFixed(4);
}

/** The README's markdown table: measure, ours, baseline, ratio, target, pass. */
export function formatTable(rows: ReportedRow[]): string {
  return `| measure | ours | baseline | ratio | target | pass |\n| --- | --- | --- | --- | --- | --- |\n${rows.map((r) => `| ${cell(r).join(' | ')} |`).join('\n')}\n`;
}

/** Writes bench/results/<name>.json: the figures, and the rows the table printed from them. */
export async function writeResult(name: string, result: object, rows: ReportedRow[]): Promise<void> {
  await fs.mkdir(path.join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  await fs.writeFile(path.join(PROJECT_ROOT, 'bench', 'results', `${name}.json`), `${JSON.stringify({ ...result, table: rows }, null, 2)}\n`);
  process.stderr.write(`wrote bench/results/${name}.json\n`);
}
