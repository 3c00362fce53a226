import { runMain, UserFacingError } from '../infra/errors';
import { benchContinuousTraining } from './ct';
import { benchLoad } from './load';
import { benchMonitor } from './monitor';
import { benchServe } from './serve';

/** `npm run bench -- <name>`: each benchmark prints its table and writes bench/results/<name>.json. */
const BENCHES: Record<string, () => Promise<void>> = {
  ct: benchContinuousTraining,
  serve: benchServe,
  monitor: benchMonitor,
  load: benchLoad,
};

runMain(async () => {
  const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  if (!names.length) throw new UserFacingError(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}>`);
  for (const name of names) {
    const bench = BENCHES[name];
    if (!bench) throw new UserFacingError(`unknown benchmark ${JSON.stringify(name)}; known: ${Object.keys(BENCHES).join(', ')}`);
    await bench();
  }
});
