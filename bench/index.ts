import { runMain, UserFacingError } from '../infra/errors';
import { benchContinuousTraining } from './ct';
import { benchLoad } from './load';
import { benchMonitor } from './monitor';
import { formatTable, type ReportedRow } from './report';
import { benchServe } from './serve';

/**
 * `npm run bench [-- <name>…]`: runs the named benchmarks (all without a name), each writing
 * bench/results/<name>.json, then prints one table of every row — the README's table.
 */
const BENCHES: Record<string, () => Promise<ReportedRow[]>> = {
  ct: benchContinuousTraining,
  serve: benchServe,
  monitor: benchMonitor,
  load: benchLoad,
};

runMain(async () => {
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const names = asked.length ? asked : Object.keys(BENCHES);
  for (const name of names) if (!BENCHES[name]) throw new UserFacingError(`unknown benchmark ${JSON.stringify(name)}; known: ${Object.keys(BENCHES).join(', ')}`);
  const rows: ReportedRow[] = [];
  for (const name of names) rows.push(...(await BENCHES[name]!()));
  process.stdout.write(`\n${formatTable(rows)}\n`);
  const missed = rows.filter((r) => r.pass === false);
  process.stdout.write(missed.length ? `${missed.length} of ${rows.filter((r) => r.pass !== null).length} targets missed: ${missed.map((r) => r.measure).join('; ')}\n` : `every target met (${rows.filter((r) => r.pass !== null).length})\n`);
});
