import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { compiledEntry } from '../../infra/entry';
import { PROJECT_ROOT } from '../../infra/paths';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { TrainingResult } from '../../workflows/continuous-training';
import type { PipelineStatus } from '../../workflows/pipeline';
import { waitForCheckpoint } from '../helpers/checkpoints';
import { createTemporalEnv, independentPg, testEnv } from '../helpers/real';

/**
 * `kill -9` of the worker process during training: the retry starts from the last heartbeat
 * checkpoint (its first round is > 0) and exactly one version is registered.
 */

let env: TestWorkflowEnvironment;
let pg: PgClient;
const bucket = `crash-${randomUUID().slice(0, 8)}`;
const children: ChildProcess[] = [];
let workerLog = '';

beforeAll(async () => {
  env = await createTemporalEnv();
  pg = await independentPg();
});

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // exited between the check and the kill
    }
  }
  await pg?.end();
  await env?.teardown();
});

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [compiledEntry('workers/dev.ts'), '--queues', 'control,cpu,gpu', '--allow-cpu'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...testEnv(bucket), TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default', MLOPS_LOG_LEVEL: 'WARN' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  child.stderr!.on('data', (d: Buffer) => (workerLog = (workerLog + d.toString()).slice(-5000)));
  children.push(child);
  return child;
}

test('kill -9 during training: the retry continues from a checkpoint and one version is registered', async () => {
  const model = `crash-${randomUUID().slice(0, 8)}`;
  const workflowId = `ct-crash-${randomUUID()}`;
  const first = startWorker();
  const handle = await env.client.workflow.start('continuousTraining', {
    taskQueue: TASK_QUEUES.control,
    workflowId,
    args: [
      {
        model,
        dataset: { flights: { from: '2001-01', to: '2001-01' } },
        preset: 'flights-delay',
        hyperparameters: { rounds: 400, maxDepth: 6 },
        training: { heartbeatSeconds: 4, checkpointEvery: 5 },
      },
    ],
  });

  const checkpointRound = await waitForCheckpoint(handle, 10, () => `worker: ${workerLog}`);
  process.kill(-first.pid!, 'SIGKILL');
  await new Promise((r) => first.once('exit', r));

  startWorker();
  const result = (await handle.result()) as TrainingResult;
  expect(result.status).toBe('registered');
  expect(result.resumedFromRound).toBeGreaterThanOrEqual(checkpointRound);
  expect(result.resumedFromRound).toBeGreaterThan(0);

  const status = (await handle.query('status')) as PipelineStatus;
  const train = status.steps.find((s) => s.name === 'train')!;
  expect(train.attempts).toBe(2);
  expect((train.outputs as { rounds: number }).rounds).toBe(400);
  const versions = await pg.query(`select mv.version from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
  expect(versions.rows).toEqual([{ version: 1 }]);
});
