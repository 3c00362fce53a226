import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Table } from '../../activities/ml/dataset';
import { multiclassMetrics } from '../../activities/ml/metrics';
import { loadTable } from '../../activities/data/prepare';
import { createSession, scoreTable } from '../../activities/training/scoring';
import { readAll } from '../../infra/artifacts';
import type { MulticlassTrainingResult, TrainingResult } from '../../workflows/continuous-training';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { MODE_FEATURES, modesCsv, syntheticMulticlass } from '../helpers/synthetic-multiclass';
import { independentS3 } from '../helpers/real';
import { useServingServices } from '../helpers/services';
import { withTestWorkers } from '../helpers/workers';
import { setAlias } from '../../infra/db/repositories';

/**
 * A multiclass task on data the user brings (a CSV of travel modes in S3, features of its own)
 * through training on real services: the classes come from the data and are stored with the
 * model, the registry's figures are those of the registered ONNX file on the test split, and a
 * label that cannot be learned fails at once, leaving nothing registered.
 */

jest.setTimeout(600_000);

const bucket = `mc-${randomUUID().slice(0, 8)}`;
const services = useServingServices(bucket, 'multiclass-training-token');
let dir: string;

const writeCsv = (file: string, t: Table, mode: (i: number) => string) => fs.writeFile(file, modesCsv(t, mode));

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'multiclass-training-'));
  const t = syntheticMulticlass(5000, 21, ['bike', 'bus', 'car', 'train']);
  await writeCsv(path.join(dir, 'modes.csv'), t, (i) => t.classes![t.label[i]!] as string);
  await writeCsv(path.join(dir, 'one-mode.csv'), t, () => 'car');
  // The same rows where bikes became scooters: four classes still, one of them another.
  await writeCsv(path.join(dir, 'scooters.csv'), t, (i) => (t.classes![t.label[i]!] === 'bike' ? 'scooter' : (t.classes![t.label[i]!] as string)));
  // The same rows with the classes as integers (line numbers, say).
  await writeCsv(path.join(dir, 'lines.csv'), t, (i) => String([-1, 4, 12, 30][t.label[i]!]));
  const s3 = independentS3();
  await s3.fPutObject(bucket, 'datasets/modes.csv', path.join(dir, 'modes.csv'));
  await s3.fPutObject(bucket, 'datasets/one-mode.csv', path.join(dir, 'one-mode.csv'));
  await s3.fPutObject(bucket, 'datasets/scooters.csv', path.join(dir, 'scooters.csv'));
  await s3.fPutObject(bucket, 'datasets/lines.csv', path.join(dir, 'lines.csv'));
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const spec = (model: string, csv: string, trainer = 'gbdt', onFailure = 'fail') => ({
  model,
  dataset: { uris: [`s3://${bucket}/datasets/${csv}`] },
  features: MODE_FEATURES,
  label: { column: 'mode', kind: 'multiclass' },
  split: { kind: 'random', seed: 3, testFraction: 0.25 },
  trainer,
  ...(trainer === 'gbdt' ? { hyperparameters: { rounds: 25, maxDepth: 4 } } : {}),
  onFailure,
});

const start = (s: ReturnType<typeof spec>) =>
  withTestWorkers(services.env, services.runtime, async () => {
    const handle = await services.env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `ct-${s.model}-${randomUUID().slice(0, 6)}`, args: [s] });
    return (await handle.result()) as TrainingResult;
  });

test('string classes from a CSV in S3: trained, gated against the prior and multinomial logistic regression, registered with its classes; the registry holds the ONNX file\'s own figures', async () => {
  const model = `modes-${randomUUID().slice(0, 8)}`;
  const result = await start(spec(model, 'modes.csv'));
  expect(result).toMatchObject({ status: 'registered', task: 'multiclass', classes: ['bike', 'bus', 'car', 'train'], reasons: [] });
  const r = result as MulticlassTrainingResult;

  const row = (await services.pg.query(`select mv.* from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model])).rows;
  expect(row).toHaveLength(1);
  const mv = row[0];
  expect(mv.status).toBe('registered');
  expect(mv.output_signature).toEqual([
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 4], classes: ['bike', 'bus', 'car', 'train'] },
    { name: 'label', datatype: 'BYTES', shape: [-1, 1] },
  ]);
  expect(mv.metrics).toMatchObject({ task: 'multiclass', classes: ['bike', 'bus', 'car', 'train'] });
  const checks = mv.metrics.checks as Array<{ gate: string; ok: boolean }>;
  expect(checks.map((c) => c.gate)).toEqual(expect.arrayContaining(['vs-prior log-loss', 'vs-baseline logreg macroF1', 'onnx-parity', 'serving-signature']));
  expect(checks.every((c) => c.ok)).toBe(true);
  expect(mv.metrics.parity.maxAbsDiff).toBeLessThan(1e-4);
  expect(mv.metrics.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(mv.metrics.rows);

  // The registered bytes, scored on the registered test split, give the registry's figures.
  const artifacts = services.runtime.artifacts;
  const onnx = (await services.pg.query(`select uri from artifacts where id = $1`, [mv.onnx_artifact_id])).rows[0].uri as string;
  const testFile = path.join(dir, `${model}-test.parquet`);
  await fs.writeFile(testFile, await readAll(await artifacts.get(artifacts.keyFromUri(mv.metrics.lineage.test.uri))));
  const features = MODE_FEATURES;
  const test = await loadTable(testFile, features, undefined, { task: 'multiclass', classes: r.classes as string[] });
  const session = await createSession(await readAll(await artifacts.get(artifacts.keyFromUri(onnx))));
  const probs = await scoreTable(session, test, features).finally(() => session.release());
  const m = multiclassMetrics(probs, test.label, 4);
  expect(m.macroF1).toBeCloseTo(mv.metrics.macroF1, 10);
  expect(m.logLoss).toBeCloseTo(r.metrics.logLoss, 10);
  expect(m.macroF1).toBeGreaterThan(r.baseline.macroF1 - 1e-4);
});

test('integer classes with the linear trainer: multinomial logistic regression, its label output INT64, registered', async () => {
  const model = `lines-${randomUUID().slice(0, 8)}`;
  const result = await start(spec(model, 'lines.csv', 'logreg'));
  expect(result).toMatchObject({ status: 'registered', task: 'multiclass', classes: [-1, 4, 12, 30], reasons: [] });
  const mv = (await services.pg.query(`select mv.output_signature, mv.metrics from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model])).rows[0];
  expect(mv.output_signature).toEqual([
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 4], classes: [-1, 4, 12, 30] },
    { name: 'label', datatype: 'INT64', shape: [-1, 1] },
  ]);
  expect(mv.metrics.lineage.trainer).toBe('logreg');
  expect(mv.metrics.parity.maxAbsDiff).toBeLessThan(1e-4);
});

test('a candidate of other classes than production is a change of signature, and production is not scored as if its columns were its classes', async () => {
  const model = `modes-${randomUUID().slice(0, 8)}`;
  const v1 = await start(spec(model, 'modes.csv'));
  expect(v1.status).toBe('registered');
  const ids = (await services.pg.query(`select m.id as model_id, mv.id as version_id from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model])).rows[0];
  await setAlias(services.runtime.db, ids.model_id, 'production', ids.version_id, { kind: 'promote', movedBy: 'test', reason: 'production for the gate' });
  const v2 = await start(spec(model, 'scooters.csv'));
  expect(v2).toMatchObject({ status: 'rejected', classes: ['bus', 'car', 'scooter', 'train'] });
  expect(v2.reasons).toEqual([
    'signature vs v1: changed: output probabilities classes ["bike","bus","car","train"]→["bus","car","scooter","train"] (limit same inputs and outputs (or gates.allowSignatureChange: true))',
    'champion v1 comparable: not comparable: its probabilities are of other classes (limit comparable)',
  ]);
  const mv = (await services.pg.query(`select mv.metrics from model_versions mv join models m on m.id = mv.model_id where m.name = $1 and mv.version = 2`, [model])).rows[0];
  expect(mv.metrics.champion).toBeUndefined();
});

test('a label with a single class fails, naming it, and registers nothing', async () => {
  const model = `one-mode-${randomUUID().slice(0, 8)}`;
  const err = await start(spec(model, 'one-mode.csv')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.message).toMatch(/label mode: a single class in 5000 labelled rows; a multiclass task needs at least two/);
  const versions = await services.pg.query(`select mv.id from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
  expect(versions.rows).toEqual([]);
});
