import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { TrainingResult } from '../../workflows/continuous-training';
import type { PipelineStatus } from '../../workflows/pipeline';
import { waitForCheckpoint } from '../helpers/checkpoints';
import { startDevWorker, workerGroup } from '../helpers/run-entry';
import { createTemporalEnv, independentPg } from '../helpers/real';

/**
 * `kill -9` of the worker process during training: the retry starts from the last heartbeat
 * checkpoint (its first round is > 0) and exactly one version is registered.
 */

let env: TestWorkflowEnvironment;
let pg: PgClient;
const bucket = `crash-${randomUUID().slice(0, 8)}`;
const workers = workerGroup();

beforeAll(async () => {
  env = await createTemporalEnv();
  pg = await independentPg();
});

afterAll(async () => {
  workers.killAll();
  await pg?.end();
  await env?.teardown();
});

const startWorker = (): ChildProcess => startDevWorker(workers, env, bucket);

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

  const checkpointRound = await waitForCheckpoint(handle, 10, () => `worker: ${workers.log()}`);
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
