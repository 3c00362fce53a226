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
  // A file is a history as `temporal workflow show -o json` writes it, or `{workflowId, history}`
  // for workflows that check their own id (modelLifecycle, promotion).
  const histories = files.map((file) => {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    return json.workflowId && json.history ? { workflowId: String(json.workflowId), history: json.history, name: path.basename(file, '.json') } : { workflowId: path.basename(file, '.json'), history: json, name: path.basename(file, '.json') };
  });
  const names = new Map(histories.map((h) => [h.workflowId, h.name]));
  let failed = 0;
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../workflows') }, histories)) {
    if (result.error) {
      failed++;
      process.stdout.write(`FAIL ${names.get(result.workflowId) ?? result.workflowId}: ${result.error.message.split('\n')[0]}\n`);
    } else {
      process.stdout.write(`ok   ${names.get(result.workflowId) ?? result.workflowId}\n`);
    }
  }
  if (failed) throw new UserFacingError(`${failed} of ${files.length} histories do not replay`);
});
