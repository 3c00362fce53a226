import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import type { Client as PgClient } from 'pg';
import { startTemporalDevServer, type TemporalDevServer } from '../../infra/services';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { TrainingResult } from '../../workflows/continuous-training';
import { waitForCheckpoint } from '../helpers/checkpoints';
import { independentPg, openTestRuntime, testServices } from '../helpers/real';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * The Temporal server itself crashes: `kill -9` of a dev server that keeps its history in a
 * database file, during training, then a restart on the same ports and file. The workers and
 * the client reconnect and the run completes, with nothing lost and nothing written twice.
 */

let runtime: WorkerRuntime;
let pg: PgClient;
let stateDir: string;
let server: TemporalDevServer | undefined;

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'temporal-crash-'));
  [runtime, pg] = await Promise.all([openTestRuntime(`tcrash-${randomUUID().slice(0, 8)}`), independentPg()]);
  await workflowBundle();
});

afterAll(async () => {
  await server?.process.stop();
  await pg?.end();
  await runtime?.close();
  await fs.rm(stateDir, { recursive: true, force: true });
});

const start = () => startTemporalDevServer({ cli: testServices.temporalCli(), stateDir, dbFilename: path.join(stateDir, 'temporal.db'), ...(server ? { ports: { grpc: Number(server.address.split(':')[1]), ui: Number(new URL(server.uiUrl).port), metrics: Number(new URL(server.metricsUrl).port) } } : {}) });

test('kill -9 of the Temporal server during training, restarted on its database: the run completes, one version, every step once', async () => {
  server = await start();
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  // What withTestWorkers needs of a test environment: the worker connection and the namespace.
  const env = { nativeConnection, namespace: 'default', client } as unknown as TestWorkflowEnvironment;
  const model = `tcrash-${randomUUID().slice(0, 6)}`;
  const workflowId = `tcrash-${randomUUID()}`;
  try {
    const result = await withTestWorkers(env, runtime, async () => {
      const handle = await client.workflow.start('continuousTraining', {
        taskQueue: TASK_QUEUES.control,
        workflowId,
        args: [{ model, preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 60_000, hyperparameters: { rounds: 600, maxDepth: 6 }, resources: { gpu: 0 }, training: { heartbeatSeconds: 2, checkpointEvery: 5 }, gates: { maxBaselineLoss: 1 } }],
      });
      await waitForCheckpoint(handle, 10, () => '');
      const killed = server!.process;
      killed.child.kill('SIGKILL');
      expect(await killed.waitForExit()).toBe(-1);
      await new Promise((r) => setTimeout(r, 3000));
      server = await start();
      return (await handle.result()) as TrainingResult;
    });
    expect(result.status).toBe('registered');
    const versions = await pg.query(`select mv.version from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
    expect(versions.rows).toEqual([{ version: 1 }]);
    const steps = await pg.query(`select s.step_name, s.status from step_runs s join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1 order by s.id`, [workflowId]);
    expect(steps.rows.map((r: { step_name: string; status: string }) => `${r.step_name}:${r.status}`)).toEqual(
      ['snapshot', 'validate-data', 'prepare', 'train', 'evaluate', 'validate-model', 'register'].map((n) => `${n}:succeeded`),
    );
    const runs = await pg.query(`select status from pipeline_runs where workflow_id = $1`, [workflowId]);
    expect(runs.rows).toEqual([{ status: 'succeeded' }]);
  } finally {
    await connection.close().catch(() => undefined);
    await nativeConnection.close().catch(() => undefined);
  }
});
