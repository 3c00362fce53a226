import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { UserFacingError, runMain } from './errors';
import { PROJECT_ROOT } from './paths';

/**
 * `npm run replay -- [files or folders]`: replays stored workflow histories (JSON, as written by
 * `temporal workflow show -o json`) against the current workflow code. A change that would break
 * running workflows (non-determinism) makes it exit 1 and name the history.
 */
runMain(async () => {
  const targets = process.argv.slice(2);
  const inputs = targets.length ? targets : [path.join(PROJECT_ROOT, 'test', 'fixtures', 'histories')];
  const files = inputs.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.json'))
          .map((f) => path.join(p, f))
      : [p],
  );
  if (files.length === 0) throw new UserFacingError(`no .json histories in ${inputs.join(', ')}`);
  const histories = files.map((file) => ({ workflowId: path.basename(file, '.json'), history: JSON.parse(readFileSync(file, 'utf8')) }));
  let failed = 0;
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../workflows') }, histories)) {
    if (result.error) {
      failed++;
      process.stdout.write(`FAIL ${result.workflowId}: ${result.error.message.split('\n')[0]}\n`);
    } else {
      process.stdout.write(`ok   ${result.workflowId}\n`);
    }
  }
  if (failed) throw new UserFacingError(`${failed} of ${files.length} histories do not replay`);
});
