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
import { createTemporalEnv, independentPg, openTestRuntime } from '../helpers/real';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * Bad inputs end with a clear message (spec errors: at once, naming the field; data errors: a
 * message or the data-validation report) and leave nothing registered.
 */

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let dir: string;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`bad-${randomUUID().slice(0, 8)}`)]);
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

async function failure(spec: unknown): Promise<{ message: string; type?: string | null; details: unknown[] }> {
  const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `bad-${randomUUID()}`, args: [spec] });
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
});
