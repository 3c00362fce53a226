import fs from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/paths';

/** Prints a benchmark's rows as the README's markdown table (measure, absolute, ratio, target). */
export function printTable(rows: Array<[string, string, string, string]>): void {
  process.stdout.write(`\n| measure | absolute | ratio | target |\n| --- | --- | --- | --- |\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n\n`);
}

/** Writes bench/results/<name>.json, the figures the README quotes. */
export async function writeResult(name: string, result: unknown): Promise<void> {
  await fs.mkdir(path.join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  await fs.writeFile(path.join(PROJECT_ROOT, 'bench', 'results', `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`wrote bench/results/${name}.json\n`);
}
