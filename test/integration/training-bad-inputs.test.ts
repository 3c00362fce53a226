import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { createTemporalEnv, independentPg, independentS3, openTestRuntime } from '../helpers/real';
import { type ActivityWrapper, withTestWorkers, workflowBundle } from '../helpers/workers';
import { waitFor } from '../helpers/wait';
import { dataError } from '../../activities/steps';
import { pipelineView } from '../../client/views';
import type { TrainingResult } from '../../workflows/continuous-training';
import type { PipelineStatus } from '../../workflows/pipeline';

/**
 * Bad inputs end with a clear message (spec errors: at once, naming the field; data errors: a
 * message or the data-validation report) and leave nothing registered.
 */

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let dir: string;
const bucket = `bad-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket)]);
  pg = await independentPg();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ct-bad-'));
  await workflowBundle();
  const flights = literal(flightsParquetPath());
  const base = `SELECT * FROM read_parquet(${flights}) WHERE month(date) = 3 LIMIT 5000`;
  await withDuckDb(async (c) => {
    await c.run(`COPY (${base}) TO ${literal(path.join(dir, 'ok.parquet'))} (FORMAT parquet)`);
    await c.run(`COPY (SELECT * FROM (${base}) WHERE false) TO ${literal(path.join(dir, 'empty.parquet'))} (FORMAT parquet)`);
    await c.run(`COPY (SELECT date, delay, distance, origin FROM (${base})) TO ${literal(path.join(dir, 'no-destination.parquet'))} (FORMAT parquet)`);
    await c.run(`COPY (SELECT date, delay, 'far' || distance::VARCHAR AS distance, origin, destination FROM (${base})) TO ${literal(path.join(dir, 'distance-text.csv'))} (HEADER)`);
    await c.run(`COPY (SELECT date, delay, NULL::BIGINT AS distance, origin, destination FROM (${base})) TO ${literal(path.join(dir, 'distance-null.parquet'))} (FORMAT parquet)`);
    await c.run(`COPY (SELECT date, 0 AS delay, distance, origin, destination FROM (${base})) TO ${literal(path.join(dir, 'on-time.parquet'))} (FORMAT parquet)`);
    await c.run(`COPY (SELECT * FROM (${base}) LIMIT 40) TO ${literal(path.join(dir, 'tiny.parquet'))} (FORMAT parquet)`);
    // Delays only before the last 30% of the dates: the time split's test rows are all on time.
    await c.run(
      `COPY (SELECT date, CASE WHEN date < (SELECT quantile_disc(date, 0.7) FROM (${base})) THEN delay ELSE 0 END AS delay, distance, origin, destination FROM (${base})) TO ${literal(path.join(dir, 'late-on-time.parquet'))} (FORMAT parquet)`,
    );
    await c.run(`COPY (SELECT strftime(date, '%Y-%m-%dT%H:%M:%S') AS departed, delay AS minutes_late, distance AS miles, origin AS airport FROM (${base})) TO ${literal(path.join(dir, 'own.csv'))} (HEADER)`);
  });
  const ok = await fs.readFile(path.join(dir, 'ok.parquet'));
  await fs.writeFile(path.join(dir, 'corrupt.parquet'), Buffer.concat([ok.subarray(0, 200), Buffer.alloc(500, 7), ok.subarray(ok.length - 8)]));
});

afterAll(async () => {
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function failure(spec: unknown, workflowId = `bad-${randomUUID()}`): Promise<{ message: string; type?: string | null; details: unknown[] }> {
  const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec] });
  try {
    await handle.result();
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    const f = cause as ApplicationFailure;
    return { message: f.message, type: f.type, details: (f.details ?? []) as unknown[] };
  }
  throw new Error('the workflow succeeded');
}

const model = () => `bad-${randomUUID().slice(0, 8)}`;

/** The attempt of every start of a step's activity, read from the server's history. */
async function activityAttempts(workflowId: string, activityId: string): Promise<number[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Set<string>();
  const attempts: number[] = [];
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes?.activityId === activityId) scheduled.add(String(e.eventId));
    const started = e.activityTaskStartedEventAttributes;
    if (started && scheduled.has(String(started.scheduledEventId))) attempts.push(started.attempt ?? 0);
  }
  return attempts;
}
const file = (name: string) => `file://${path.join(dir, name)}`;
const dataSpec = (name: string) => ({ model: model(), dataset: { uris: [file(name)] }, preset: 'flights-delay', onFailure: 'fail', hyperparameters: { rounds: 3 } });

const specCases: Array<[string, () => unknown, RegExp]> = [
  ['traversal in the model name', () => ({ model: '../../etc/passwd', dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay' }), /model: must be 1–63 lowercase/],
  ['unknown trainer', () => ({ model: model(), dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay', trainer: 'catboost' }), /trainer: "catboost" is not a registered trainer \(registered: gbdt, logreg, command\)/],
  ['hyperparameter out of range', () => ({ model: model(), dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay', hyperparameters: { maxBins: 1000 } }), /hyperparameters\.maxBins: .*255.*\(trainer gbdt\)/],
  ['unknown hyperparameter', () => ({ model: model(), dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay', hyperparameters: { depth: 3 } }), /hyperparameters: .*depth/],
  ['no features and no preset', () => ({ model: model(), dataset: { flights: { from: '2001-01', to: '2001-01' } } }), /features: give features and label, or a preset/],
  ['months outside the flights data', () => ({ model: model(), dataset: { flights: { from: '2000-12', to: '2001-01' } }, preset: 'flights-delay' }), /dataset.*covers 2001-01 to 2001-06/],
  ['a URI with ..', () => ({ model: model(), dataset: { uris: ['file:///data/../etc/shadow.csv'] }, preset: 'flights-delay' }), /dataset.*must not contain "\.\." segments/],
  ['SQL in a column name', () => ({ model: model(), dataset: { uris: [file('ok.parquet')] }, features: [{ name: 'x"; drop table models; --', kind: 'numeric' }], label: { column: 'delay', greaterThan: 15 } }), /features\.0\.name: must be a column name/],
  ['a slice on a feature the task lacks', () => ({ model: model(), dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay', evaluation: { slices: [{ feature: 'carrier', top: 3 }] } }), /evaluation\.slices\.0\.feature: carrier is not a feature of this task/],
  ['oversized inline payload', () => ({ model: model(), dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay', hyperparameters: { rows: 'x'.repeat(100_000) } }), /over the 65536-byte limit; pass data by URI/],
];

const dataCases: Array<[string, string, RegExp]> = [
  ['missing file', 'not-there.parquet', /snapshot.*file not found/],
  ['corrupt parquet', 'corrupt.parquet', /cannot read as parquet/],
  ['empty dataset', 'empty.parquet', /the dataset has no rows/],
  ['missing column', 'no-destination.parquet', /column destination \(categorical feature destination\) is missing/],
  ['wrong type', 'distance-text.csv', /column distance \(numeric feature distance\) is VARCHAR; expected numeric/],
  ['all-null feature', 'distance-null.parquet', /column distance \(numeric feature distance\) has no values/],
  ['single-class label', 'on-time.parquet', /a single class \(0 positive of 5000\)/],
  ['too few rows', 'tiny.parquet', /too few rows: 40 labelled rows; training needs at least 50 and the test split at least 20/],
];

describe('bad inputs', () => {
  test.each(specCases)('spec: %s fails at once, naming the field', async (_name, spec, pattern) => {
    const f = await withTestWorkers(env, runtime, () => failure(spec()), { queues: [TASK_QUEUES.control] });
    expect(f.type).toBe('InvalidInput');
    expect(f.message).toMatch(pattern);
  });

  test.each(dataCases)('data: %s ends the run with a clear message', async (_name, name, pattern) => {
    const spec = dataSpec(name);
    const f = await withTestWorkers(env, runtime, () => failure(spec));
    expect(f.type).toBe('StepFailed');
    expect(f.message).toMatch(pattern);
    const versions = await pg.query(`select count(*)::int n from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [spec.model]);
    expect(versions.rows[0].n).toBe(0);
    const spans = await pg.query(`select count(*)::int n from data_spans s join models m on m.id = s.model_id where m.name = $1`, [spec.model]);
    expect(spans.rows[0].n).toBe(0);
  });

  test('a split that leaves the test rows one class is named at prepare, before anything is trained', async () => {
    const spec = dataSpec('late-on-time.parquet');
    const f = await withTestWorkers(env, runtime, () => failure(spec));
    expect(f.type).toBe('StepFailed');
    expect(f.message).toMatch(/step prepare failed: prepare: the time split on date leaves a single class of label delay in the test split \(0 positive of \d+\); evaluation needs both/);
    expect(f.details[0]).toMatchObject({ step: 'prepare', details: { fix: { overrides: ['split', 'label', 'dataset'] } } });
    const versions = await pg.query(`select count(*)::int n from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [spec.model]);
    expect(versions.rows[0].n).toBe(0);
  });

  test('a validation failure carries the data-validation report', async () => {
    const f = await withTestWorkers(env, runtime, () => failure(dataSpec('no-destination.parquet')));
    const details = f.details[0] as { details?: { report?: { ok: boolean; anomalies: Array<{ kind: string; column: string; severity: string }> } } };
    const report = details.details?.report;
    expect(report?.ok).toBe(false);
    expect(report?.anomalies).toContainEqual(expect.objectContaining({ kind: 'missing-column', column: 'destination', severity: 'error' }));
  });

  test('an unregistered command trainer is refused by name, with the registered ones listed', async () => {
    const spec = { ...dataSpec('ok.parquet'), trainer: 'command', command: 'rm-rf', hyperparameters: {} };
    const f = await withTestWorkers(env, runtime, () => failure(spec));
    expect(f.message).toMatch(/no command trainer named "rm-rf" on this worker \(registered: sklearn-logreg/);
  });

  test('a missing label column is named without the engine\'s SQL, and not retried', async () => {
    const spec = { ...dataSpec('ok.parquet'), label: { column: 'delayed', greaterThan: 15 } };
    const workflowId = `bad-label-${randomUUID()}`;
    const f = await withTestWorkers(env, runtime, () => failure(spec, workflowId));
    expect(f?.message).toMatch(/column delayed \(the label\) is missing; the data has date, delay, distance, origin, destination/);
    expect(f?.message).not.toMatch(/Binder|SELECT|FROM/);
    const started = await activityAttempts(workflowId, 'validate-data');
    expect(started).toEqual([1]);
  });

  test('a label a resume can fix pauses with the fix named; a resume with a new label trains', async () => {
    const spec = { ...dataSpec('ok.parquet'), onFailure: 'pause', label: { column: 'origin' } };
    const workflowId = `bad-resume-${randomUUID()}`;
    const [paused, result, st] = await withTestWorkers(env, runtime, async () => {
      const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec] });
      const paused = await waitFor('the run to pause at validate-data', async () => {
        const s = await handle.query<PipelineStatus>('status');
        return s.state === 'awaiting-resume' ? s : undefined;
      });
      await handle.signal('resume', { label: { column: 'delay', greaterThan: 15 } });
      const result = (await handle.result()) as TrainingResult;
      return [paused, result, await handle.query<PipelineStatus & { notes: string[] }>('status')] as const;
    });
    expect(paused.failure).toMatchObject({ step: 'validate-data', type: 'DataError', details: { fix: { overrides: ['label', 'dataset'] } } });
    expect(paused.failure!.message).toMatch(/column origin \(the label\) is VARCHAR; expected numeric or boolean \(binary classification/);
    expect(pipelineView(paused)).toContain(`resume with label or dataset changed: mlops resume --workflow-id ${workflowId} --overrides '{"label":`);
    expect(st.notes).toContain('resumed with overrides: label');
    expect(st.steps.find((s) => s.name === 'validate-data')!.runs).toBe(2);
    const versions = await pg.query(`select mv.version from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [spec.model]);
    expect(versions.rows.map((r) => r.version)).toEqual([result.version]);
    const run = await pg.query(`select status from pipeline_runs where workflow_id = $1`, [workflowId]);
    expect(run.rows[0].status).toBe(result.status === 'registered' ? 'succeeded' : 'rejected');
  });

  test('a failure no resume can fix ends the run at once instead of pausing', async () => {
    const spec = { ...dataSpec('ok.parquet'), onFailure: 'pause' };
    const workflowId = `bad-unfixable-${randomUUID()}`;
    // A registered trainer's own verdict that nothing in the spec can change.
    const wrap: ActivityWrapper = (name, fn) => (name === 'train' ? async () => { throw dataError('train: this trainer refuses the data (injected)', { overrides: [] }); } : fn);
    const f = await withTestWorkers(env, runtime, () => failure(spec, workflowId), { wrap });
    expect(f?.type).toBe('StepFailed');
    expect(f?.message).toBe('step train failed: train: this trainer refuses the data (injected) (no resume can fix this, so the run did not pause)');
    const run = await pg.query(`select status from pipeline_runs where workflow_id = $1`, [workflowId]);
    expect(run.rows[0].status).toBe('failed');
  });
});

describe('data the user brings', () => {
  test('a CSV on S3 with features of its own trains end to end', async () => {
    await independentS3().fPutObject(bucket, 'datasets/own.csv', path.join(dir, 'own.csv'));
    const spec = {
      model: model(),
      dataset: { uris: [`s3://${bucket}/datasets/own.csv`] },
      features: [
        { name: 'hour', kind: 'numeric', column: 'departed', transform: 'hour' },
        { name: 'miles', kind: 'numeric' },
        { name: 'airport', kind: 'categorical' },
      ],
      label: { column: 'minutes_late', greaterThan: 15 },
      split: { kind: 'time', column: 'departed', testFraction: 0.25 },
      hyperparameters: { rounds: 5, maxDepth: 3 },
      onFailure: 'fail',
      gates: { minAuc: 0, maxBaselineLoss: 1 },
    };
    const workflowId = `own-csv-${randomUUID()}`;
    const result = await withTestWorkers(env, runtime, async () => {
      const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec] });
      return (await handle.result()) as TrainingResult;
    });
    expect(result.status).toBe('registered');
    const row = await pg.query(`select mv.status, mv.input_signature from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [spec.model]);
    expect(row.rows).toHaveLength(1);
    expect(row.rows[0].status).toBe('registered');
    // The model takes the timestamp itself and derives the hour inside the graph.
    expect(row.rows[0].input_signature).toEqual([
      { name: 'departed', datatype: 'INT64', shape: [-1, 1], derives: [{ name: 'hour', transform: 'hour' }] },
      { name: 'miles', datatype: 'FP32', shape: [-1, 1] },
      { name: 'airport', datatype: 'BYTES', shape: [-1, 1] },
    ]);
    const steps = await pg.query(`select step_name, outputs from step_runs s join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1 and step_name = 'prepare'`, [workflowId]);
    const prepared = steps.rows[0].outputs as { train: { rows: number }; test: { rows: number } };
    expect(prepared.train.rows + prepared.test.rows).toBe(5000);
  });

  test('a regression on a CSV from S3: minutes late predicted as a number, gated on RMSE against ridge, registered with output prediction', async () => {
    await independentS3().fPutObject(bucket, 'datasets/own-regression.csv', path.join(dir, 'own.csv'));
    const spec = {
      model: model(),
      dataset: { uris: [`s3://${bucket}/datasets/own-regression.csv`] },
      features: [
        { name: 'hour', kind: 'numeric', column: 'departed', transform: 'hour' },
        { name: 'miles', kind: 'numeric' },
        { name: 'airport', kind: 'categorical' },
      ],
      label: { column: 'minutes_late', kind: 'regression' },
      split: { kind: 'random', seed: 7, testFraction: 0.25 },
      hyperparameters: { rounds: 20, maxDepth: 3 },
      onFailure: 'fail',
      // Delays are mostly noise at this size: judge the pipeline, not the model.
      gates: { minR2: -1, maxBaselineLoss: 1 },
    };
    const workflowId = `own-regression-${randomUUID()}`;
    const result = await withTestWorkers(env, runtime, async () => {
      const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec] });
      return (await handle.result()) as TrainingResult;
    });
    expect(result).toMatchObject({ status: 'registered', task: 'regression', reasons: [] });
    if (result.task !== 'regression') throw new Error('not a regression result');
    expect(result.metrics.rmse).toBeGreaterThan(0);
    expect(result.baselineRmse).toBeGreaterThan(0);
    const row = await pg.query(
      `select mv.output_signature, mv.metrics->'checks' as checks, mv.metrics->>'rmse' as rmse, mv.metrics->'parity' as parity from model_versions mv join models m on m.id = mv.model_id where m.name = $1`,
      [spec.model],
    );
    expect(row.rows[0].output_signature).toEqual([{ name: 'prediction', datatype: 'FP32', shape: [-1, 1] }]);
    expect(Number(row.rows[0].rmse)).toBeCloseTo(result.metrics.rmse, 10);
    const gates = (row.rows[0].checks as Array<{ gate: string; ok: boolean }>).map((c) => c.gate);
    expect(gates).toEqual(expect.arrayContaining(['min-r2', 'vs-baseline ridge', 'onnx-parity', 'serving-signature']));
    expect(gates).not.toContain('min-auc');
    // The served graph computes the trainer's model: parity on every test row, relative to the predictions' size.
    expect(row.rows[0].parity.rows).toBeGreaterThan(1000);
    expect(row.rows[0].parity.maxAbsDiff).toBeLessThanOrEqual(1e-4 * row.rows[0].parity.scale);
  });

  test('a regression label that is text is named as such, not retried, and nothing is registered', async () => {
    await independentS3().fPutObject(bucket, 'datasets/own-text-label.csv', path.join(dir, 'own.csv'));
    const spec = {
      model: model(),
      dataset: { uris: [`s3://${bucket}/datasets/own-text-label.csv`] },
      features: [{ name: 'miles', kind: 'numeric' }],
      label: { column: 'airport', kind: 'regression' },
      onFailure: 'fail',
    };
    const workflowId = `own-text-label-${randomUUID()}`;
    const f = await withTestWorkers(env, runtime, () => failure(spec, workflowId));
    expect(f.message).toMatch(/column airport \(the label, a regression target\) is VARCHAR; expected numeric \(a regression predicts a number: a numeric column\)/);
    expect(await activityAttempts(workflowId, 'validate-data')).toEqual([1]);
    const rows = await pg.query(`select 1 from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [spec.model]);
    expect(rows.rows).toHaveLength(0);
  });
});
