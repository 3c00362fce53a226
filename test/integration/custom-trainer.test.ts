import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import * as ort from 'onnxruntime-node';
import { readAll } from '../../infra/artifacts';
import { createLogger } from '../../infra/log';
import { PROJECT_ROOT } from '../../infra/paths';
import { startModelServer, type RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { BinaryTrainingResult as TrainingResult } from '../../workflows/continuous-training';
import type { PipelineStatus } from '../../workflows/pipeline';
import type { PromotionStatus } from '../../workflows/promotion';
import { waitForCheckpoint } from '../helpers/checkpoints';
import { workerGroup } from '../helpers/run-entry';
import { createTemporalEnv, independentPg, openTestRuntime, testEnv } from '../helpers/real';
import { epochSeconds } from '../../activities/ml/model-inputs';

/**
 * A trainer of the user's own (test/fixtures/custom-trainer-worker.cjs: gradient-descent
 * logistic regression), registered through the plugin options in a worker process of theirs:
 * it trains with heartbeats and checkpoints, a `kill -9` of that process mid-training resumes
 * from the last checkpoint, the model is evaluated, promoted and served.
 */

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let server: RunningModelServer;
const bucket = `custom-${randomUUID().slice(0, 8)}`;
const TOKEN = randomBytes(24).toString('base64url');
const workers = workerGroup();

beforeAll(async () => {
  [env, runtime, pg] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket), independentPg()]);
  server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('test-serve'), adminToken: TOKEN, predictionLog: { intervalMs: 50 } });
});

afterAll(async () => {
  workers.killAll();
  await server?.close();
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
});

function startWorker(): ChildProcess {
  return workers.start([path.join(PROJECT_ROOT, 'test', 'fixtures', 'custom-trainer-worker.cjs')], {
      ...process.env,
      ...testEnv(bucket),
      TEMPORAL_ADDRESS: env.address,
      MLOPS_MODEL_SERVER_URL: server.url,
      MLOPS_ADMIN_TOKEN: TOKEN,
      MLOPS_LOG_LEVEL: 'WARN',
    });
}

test('a trainer registered through the plugin options checkpoints, resumes after kill -9, is evaluated and is served', async () => {
  const model = `custom-${randomUUID().slice(0, 8)}`;
  const workflowId = `ct-custom-${randomUUID()}`;
  const first = startWorker();
  const handle = await env.client.workflow.start('continuousTraining', {
    taskQueue: TASK_QUEUES.control,
    workflowId,
    args: [
      {
        model,
        dataset: { flights: { from: '2001-01', to: '2001-01' } },
        preset: 'flights-delay',
        sampleRows: 20_000,
        trainer: 'sgd-logreg',
        hyperparameters: { epochs: 60_000, learningRate: 0.5 },
        resources: { gpu: 0 },
        gates: { minAuc: 0.5 },
        training: { heartbeatSeconds: 4, checkpointEvery: 500 },
      },
    ],
  });

  const checkpointRound = await waitForCheckpoint(handle, 1000, () => `worker: ${workers.log()}`);
  process.kill(-first.pid!, 'SIGKILL');
  await new Promise((r) => first.once('exit', r));

  startWorker();
  const result = (await handle.result()) as TrainingResult;
  expect(result.status).toBe('registered');
  expect(result.resumedFromRound).toBeGreaterThanOrEqual(checkpointRound);
  // Evaluated: real metrics on the test split, and ONNX scores equal the trainer's own.
  expect(result.metrics.auc).toBeGreaterThan(0.55);
  expect(result.parityMaxAbsDiff).toBeLessThan(1e-4);

  const status = (await handle.query('status')) as PipelineStatus;
  const train = status.steps.find((s) => s.name === 'train')!;
  expect(train.attempts).toBe(2);
  expect(train.outputs).toMatchObject({ trainer: 'sgd-logreg', rounds: 60_000 });
  const versions = await pg.query(`select mv.version from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
  expect(versions.rows).toEqual([{ version: 1 }]);

  // Served: promoted directly, then answered over HTTP with the same score as the ONNX file.
  const promotion = await env.client.workflow.execute('promotion', {
    taskQueue: TASK_QUEUES.control,
    workflowId: `promotion-${model}`,
    // The latency gate is generous: this test is about the trainer, and runs beside other test files on 2 cores.
    args: [{ model, version: 1, strategy: 'direct', contractRows: 50, loadTest: { seconds: 1, concurrency: 2 }, gates: { maxP99Ms: 2000 } }],
  });
  // The whole status on failure: which gate rolled it back, and with what figures.
  expect(promotion as PromotionStatus).toMatchObject({ outcome: 'promoted' });
  // A Thursday at 17:00 UTC: the served model takes the timestamp and derives hour and day of week itself.
  const row = { date: epochSeconds('2001-01-04T17:00:00Z'), distance: 700, origin: 'ORD', destination: 'LGA' };
  const meta = (await (await fetch(`${server.url}/v2/models/${model}`)).json()) as { inputs: Array<{ name: string; datatype: string }> };
  const res = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: meta.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: [1, 1], data: [row[i.name as keyof typeof row]] })) }),
  });
  const body = (await res.json()) as { model_version: string; outputs: Array<{ name: string; data: number[] }> };
  expect({ status: res.status, version: body.model_version }).toEqual({ status: 200, version: '1' });
  const onnx = await readAll(await runtime.artifacts.get(runtime.artifacts.keyFromUri(result.modelUri)));
  const session = await ort.InferenceSession.create(onnx);
  const feeds = Object.fromEntries(meta.inputs.map((i) => [i.name, i.datatype === 'BYTES' ? new ort.Tensor('string', [String(row[i.name as keyof typeof row])], [1, 1]) : i.datatype === 'INT64' ? new ort.Tensor('int64', [BigInt(row[i.name as keyof typeof row])], [1, 1]) : new ort.Tensor('float32', [Number(row[i.name as keyof typeof row])], [1, 1])]));
  const offline = (await session.run(feeds)).probability!.data as Float32Array;
  await session.release();
  expect(Math.abs(body.outputs.find((o) => o.name === 'probability')!.data[0]! - offline[0]!)).toBeLessThan(1e-6);
});
