import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import * as Minio from 'minio';
import type { Client as PgClient } from 'pg';
import { startMinio, type MinioServer } from '../../infra/services';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { TrainingResult } from '../../workflows/continuous-training';
import { createTemporalEnv, independentPg, openTestRuntime, testServices } from '../helpers/real';
import { TcpProxy } from '../helpers/tcp-proxy';
import { withTestWorkers, workflowBundle, type ActivityWrapper } from '../helpers/workers';

/**
 * The stores go away during a pipeline: MinIO killed for 30 s while the snapshot is written and
 * again while the model is uploaded; PostgreSQL unreachable for 20 s (a proxy resets every
 * connection) while a step records its result. Each run completes, waiting the outage out inside
 * the step's attempt, with one version, one row per step and every object in the store.
 */

let env: TestWorkflowEnvironment;
let pg: PgClient;
let dir: string;
const STEPS = ['snapshot', 'validate-data', 'prepare', 'train', 'evaluate', 'validate-model', 'register'];
const SPEC = { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 5000, hyperparameters: { rounds: 20 }, resources: { gpu: 0 }, training: { checkpointEvery: 2 }, gates: { minAuc: 0.5, maxBaselineLoss: 1 } } as const;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'store-outages-'));
  [env, pg] = await Promise.all([createTemporalEnv(), independentPg()]);
  await workflowBundle();
});

afterAll(async () => {
  await pg?.end();
  await env?.teardown();
  await fs.rm(dir, { recursive: true, force: true });
});

const runtimeWith = (overrides: NodeJS.ProcessEnv) => openTestRuntime(undefined, overrides);

/** Runs `outage` once, at the start of the first call of each activity named. */
function onceAtStart(names: string[], outage: (name: string) => Promise<void>): ActivityWrapper {
  const done = new Set<string>();
  return (name, fn) =>
    names.includes(name)
      ? async (...args) => {
          if (!done.has(name)) {
            done.add(name);
            await outage(name);
          }
          return fn(...args);
        }
      : fn;
}

async function train(runtime: WorkerRuntime, wrap: ActivityWrapper): Promise<{ model: string; workflowId: string; result: TrainingResult }> {
  const model = `outage-${randomUUID().slice(0, 6)}`;
  const workflowId = `outage-${randomUUID()}`;
  const result = await withTestWorkers(
    env,
    runtime,
    async () => (await env.client.workflow.execute('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [{ model, ...SPEC }] })) as TrainingResult,
    { wrap },
  );
  return { model, workflowId, result };
}

async function rowsOf(model: string, workflowId: string) {
  const versions = await pg.query(`select mv.version from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
  const steps = await pg.query(
    `select s.step_name, s.status, s.attempts, s.duration_ms from step_runs s join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1 order by s.id`,
    [workflowId],
  );
  const runs = await pg.query(`select status from pipeline_runs where workflow_id = $1`, [workflowId]);
  const artifacts = await pg.query(
    `select a.uri from artifacts a join step_runs s on s.id = a.producing_step_run_id join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1`,
    [workflowId],
  );
  return {
    versions: versions.rows as Array<{ version: number }>,
    steps: steps.rows as Array<{ step_name: string; status: string; attempts: number; duration_ms: number }>,
    runs: runs.rows as Array<{ status: string }>,
    artifacts: (artifacts.rows as Array<{ uri: string }>).map((r) => r.uri),
  };
}

test('MinIO killed for 30 s as the snapshot is written and again as the model is uploaded: the run completes in one attempt per step, every object stored', async () => {
  let minio: MinioServer = await startMinio({ binary: testServices.minioBinary(), dataDir: path.join(dir, 'minio'), logDir: dir });
  const port = Number(new URL(minio.endpoint).port);
  const bucket = `outage-${randomUUID().slice(0, 8)}`;
  const runtime = await runtimeWith({ S3_ENDPOINT: minio.endpoint, AWS_ACCESS_KEY_ID: minio.accessKey, AWS_SECRET_ACCESS_KEY: minio.secretKey, ARTIFACT_ROOT: `s3://${bucket}/artifacts` });
  const outages: Array<{ step: string; down: number; up?: number }> = [];
  let restarted: Promise<void> = Promise.resolve();
  try {
    const { model, workflowId, result } = await train(
      runtime,
      onceAtStart(['snapshot', 'train'], async (step) => {
        await restarted;
        minio.process.child.kill('SIGKILL');
        await minio.process.waitForExit();
        const outage: { step: string; down: number; up?: number } = { step, down: Date.now() };
        outages.push(outage);
        restarted = new Promise<void>((resolve, reject) =>
          setTimeout(() => {
            startMinio({ binary: testServices.minioBinary(), dataDir: path.join(dir, 'minio'), logDir: dir, port })
              .then((m) => {
                minio = m;
                outage.up = Date.now();
                resolve();
              })
              .catch(reject);
          }, 30_000),
        );
      }),
    );
    await restarted;
    expect(result.status).toBe('registered');
    expect(outages.map((o) => o.step)).toEqual(['snapshot', 'train']);
    expect(outages.every((o) => o.up! - o.down >= 30_000)).toBe(true);
    const rows = await rowsOf(model, workflowId);
    expect(rows.versions).toEqual([{ version: 1 }]);
    expect(rows.runs).toEqual([{ status: 'succeeded' }]);
    expect(rows.steps.map((s) => `${s.step_name}:${s.status}:${s.attempts}`)).toEqual(STEPS.map((n) => `${n}:succeeded:1`));
    // Both steps waited the outage out inside their one attempt.
    for (const step of ['snapshot', 'train']) expect(rows.steps.find((s) => s.step_name === step)!.duration_ms).toBeGreaterThan(25_000);
    // Every object the run recorded is in the store, read by a client of its own.
    const s3 = new Minio.Client({ endPoint: '127.0.0.1', port, useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey });
    expect(rows.artifacts.length).toBeGreaterThan(0);
    for (const uri of [...rows.artifacts, result.modelUri]) {
      const key = uri.slice(`s3://${bucket}/`.length);
      await expect(s3.statObject(bucket, key)).resolves.toMatchObject({ size: expect.any(Number) });
    }
  } finally {
    await runtime.close();
    await restarted.catch(() => undefined);
    await minio.process.stop();
  }
}, 300_000);

test('PostgreSQL unreachable for 20 s (every connection reset) as a step records its result: the run completes with no duplicate rows', async () => {
  const url = new URL(testServices.databaseUrl());
  const proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
  url.host = `127.0.0.1:${proxy.port}`;
  const runtime = await runtimeWith({ DATABASE_URL: url.toString() });
  let cutAt = 0;
  try {
    const { model, workflowId, result } = await train(
      runtime,
      onceAtStart(['prepare'], async () => {
        cutAt = Date.now();
        proxy.cut(20_000);
      }),
    );
    expect(cutAt).toBeGreaterThan(0);
    expect(proxy.refused).toBeGreaterThan(0);
    expect(result.status).toBe('registered');
    const rows = await rowsOf(model, workflowId);
    expect(rows.versions).toEqual([{ version: 1 }]);
    expect(rows.runs).toEqual([{ status: 'succeeded' }]);
    expect(rows.steps.map((s) => `${s.step_name}:${s.status}:${s.attempts}`)).toEqual(STEPS.map((n) => `${n}:succeeded:1`));
    expect(rows.steps.find((s) => s.step_name === 'prepare')!.duration_ms).toBeGreaterThan(15_000);
    expect(new Set(rows.artifacts).size).toBe(rows.artifacts.length);
  } finally {
    await runtime.close();
    await proxy.close();
  }
}, 300_000);
