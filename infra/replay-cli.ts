import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { workflowMetricSinks } from '../workers/workflow-metrics';
import { withEncryption } from './codec';
import { loadConfig } from './config';
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
  // Results name only the workflow id, and runs of one id (a model's promotions) are recorded
  // more than once: replay in batches whose ids are unique, so every result names its file.
  const batches: Array<typeof histories> = [];
  for (const h of histories) {
    const batch = batches.find((b) => !b.some((x) => x.workflowId === h.workflowId));
    if (batch) batch.push(h);
    else batches.push([h]);
  }
  let failed = 0;
  // Our workflows report decisions to metric sinks (never called on replay, but they must be
  // registered); histories sealed with MLOPS_CODEC_KEYS open with the same keys.
  const keys = loadConfig().codecKeys;
  const options = { workflowsPath: require.resolve('../workflows'), sinks: workflowMetricSinks(), ...(keys ? { dataConverter: withEncryption(undefined, keys) } : {}) };
  for (const batch of batches) {
    const names = new Map(batch.map((h) => [h.workflowId, h.name]));
    for await (const result of Worker.runReplayHistories(options, batch)) {
      if (result.error) {
        failed++;
        process.stdout.write(`FAIL ${names.get(result.workflowId) ?? result.workflowId}: ${result.error.message.split('\n')[0]}\n`);
      } else {
        process.stdout.write(`ok   ${names.get(result.workflowId) ?? result.workflowId}\n`);
      }
    }
  }
  if (failed) throw new UserFacingError(`${failed} of ${files.length} histories do not replay`);
});
