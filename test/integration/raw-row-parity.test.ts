import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createMonitoringActivities } from '../../activities/monitoring';
import { monitoringThresholds, type MonitoringReport } from '../../workflows/contracts/lifecycle';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { epochSeconds } from '../../activities/ml/model-inputs';
import { readAll } from '../../infra/artifacts';
import type { BinaryTrainingResult, TrainingResult } from '../../workflows/continuous-training';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { promotionWorkflowId, type PromotionStatus } from '../../workflows/promotion';
import { waitFor } from '../helpers/wait';
import { independentS3 } from '../helpers/real';
import { useServingServices } from '../helpers/services';
import { withTestWorkers } from '../helpers/workers';

/**
 * No training/serving skew for time features: a CSV the user brings over S3, with a timestamp
 * column as text, trains a model whose hour, day of week and month are derived inside the graph.
 * Raw rows read straight from the file — the timestamp only turned into epoch seconds, as the
 * docs tell a client — go through the model server and must score as the trainer scored the
 * same rows from the features DuckDB derived at preparation.
 */

jest.setTimeout(600_000);

const TOKEN = 'raw-row-parity-token-0123';
const bucket = `raw-${randomUUID().slice(0, 8)}`;
const model = `raw-${randomUUID().slice(0, 8)}`;
const services = useServingServices(bucket, TOKEN);
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raw-parity-'));
  // Three months of flights as the user's own table: other column names, the time as ISO text.
  await withDuckDb((c) =>
    c.run(
      `COPY (SELECT strftime(date, '%Y-%m-%dT%H:%M:%S') AS departed, delay AS minutes_late, distance AS miles, origin AS airport
             FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) IN (1, 2, 3) ORDER BY hash(date, distance, origin) LIMIT 6000)
       TO ${literal(path.join(dir, 'departures.csv'))} (HEADER)`,
    ),
  );
  await independentS3().fPutObject(bucket, 'datasets/departures.csv', path.join(dir, 'departures.csv'));
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const artifact = async (uri: string) => readAll(await services.runtime.artifacts.get(services.runtime.artifacts.keyFromUri(uri)));

interface RawRow {
  departed: string;
  miles: number;
  airport: string;
}

/** The CSV as a client holds it: text, parsed here without DuckDB. */
async function rawRows(file: string): Promise<RawRow[]> {
  const [header, ...lines] = (await fs.readFile(file, 'utf8')).trim().split('\n');
  const cols = header!.split(',');
  return lines.map((line) => {
    const v = Object.fromEntries(line.split(',').map((x, i) => [cols[i]!, x]));
    return { departed: v.departed!, miles: Number(v.miles), airport: v.airport! };
  });
}

// The documented client side of a timestamp input: epoch seconds, a time without a zone read as UTC.
const epochOf = (departed: string) => epochSeconds(`${departed}Z`);

test('a CSV over S3 with time features trains, serves its raw columns, and raw rows from the file score as the trainer scored them', async () => {
  const workflowId = `ct-${model}`;
  const spec = {
    model,
    dataset: { uris: [`s3://${bucket}/datasets/departures.csv`] },
    features: [
      { name: 'hour', kind: 'numeric', column: 'departed', transform: 'hour' },
      { name: 'miles', kind: 'numeric' },
      { name: 'weekday', kind: 'numeric', column: 'departed', transform: 'dayofweek' },
      { name: 'month', kind: 'numeric', column: 'departed', transform: 'month' },
      { name: 'airport', kind: 'categorical' },
    ],
    label: { column: 'minutes_late', greaterThan: 15 },
    split: { kind: 'random', seed: 3, testFraction: 0.3 },
    hyperparameters: { rounds: 30, maxDepth: 4 },
    onFailure: 'fail',
    gates: { minAuc: 0.5 },
  };
  const result = (await withTestWorkers(services.env, services.runtime, async () => {
    const handle = await services.env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec] });
    return (await handle.result()) as TrainingResult;
  })) as BinaryTrainingResult;
  expect(result).toMatchObject({ status: 'registered', reasons: [] });
  // Evaluation already compared the trainer's scores with the ONNX graph's on the timestamps.
  expect(result.parityMaxAbsDiff).toBeLessThan(1e-5);

  const mv = await services.pg.query(`select mv.version, mv.input_signature from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
  expect(mv.rows[0].input_signature).toEqual([
    { name: 'departed', datatype: 'INT64', shape: [-1, 1], derives: [{ name: 'hour', transform: 'hour' }, { name: 'weekday', transform: 'dayofweek' }, { name: 'month', transform: 'month' }] },
    { name: 'miles', datatype: 'FP32', shape: [-1, 1] },
    { name: 'airport', datatype: 'BYTES', shape: [-1, 1] },
  ]);

  // Promoted directly: its contract test sends the evaluation sample's timestamps through the server too.
  const promotion = await withTestWorkers(
    services.env,
    services.runtime,
    async () => {
      const input = { model, version: 1, strategy: 'direct' as const, contractRows: 50, loadTest: { seconds: 1, concurrency: 2 }, gates: { maxP99Ms: 2000 } };
      const handle = await services.env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [input] });
      return (await handle.result()) as PromotionStatus;
    },
    { queues: [TASK_QUEUES.control] },
  );
  expect(promotion).toMatchObject({ outcome: 'promoted' });
  const meta = (await (await fetch(`${services.server.url}/v2/models/${model}`)).json()) as { inputs: Array<{ name: string; datatype: string }> };
  expect(meta.inputs.map((i) => `${i.name} ${i.datatype}`)).toEqual(['departed INT64', 'miles FP32', 'airport BYTES']);

  // The trainer's own scores of the test split, from the features DuckDB derived; each test row found in the raw file by its values.
  const steps = await services.pg.query(`select s.step_name, s.outputs from step_runs s join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1 and s.step_name in ('prepare', 'train')`, [workflowId]);
  const outputs = Object.fromEntries(steps.rows.map((r) => [r.step_name, r.outputs]));
  const own = await artifact(outputs.train.trainerScores.uri);
  const trainerScores = new Float64Array(own.buffer.slice(own.byteOffset, own.byteOffset + own.byteLength));
  const testFile = path.join(dir, 'test.parquet');
  await fs.writeFile(testFile, await artifact(outputs.prepare.test.uri));
  const testRows = await withDuckDb(async (c) => (await c.runAndReadAll(`SELECT departed, miles, airport FROM read_parquet(${literal(testFile)})`)).getRows());
  expect(testRows).toHaveLength(trainerScores.length);
  const key = (epoch: number, miles: number, airport: string) => `${epoch}|${miles}|${airport}`;
  const scoreOf = new Map<string, number | null>();
  testRows.forEach(([e, miles, airport], i) => {
    const k = key(Number(e), Number(miles), String(airport));
    // A key twice is ambiguous: left out.
    scoreOf.set(k, scoreOf.has(k) ? null : trainerScores[i]!);
  });
  const raw = (await rawRows(path.join(dir, 'departures.csv'))).filter((r) => typeof scoreOf.get(key(epochOf(r.departed), r.miles, r.airport)) === 'number');
  expect(raw.length).toBeGreaterThan(1000);
  const sample = raw.slice(0, 600);
  // Every weekday among them, so the day-of-week derivation is exercised across its range.
  expect(new Set(sample.map((r) => new Date(epochOf(r.departed) * 1000).getUTCDay())).size).toBe(7);

  const windowStart = ((await services.pg.query(`select now() as t`)).rows[0].t as Date).toISOString();
  let maxDiff = 0;
  for (let at = 0; at < sample.length; at += 50) {
    const batch = sample.slice(at, at + 50);
    const res = await fetch(`${services.server.url}/v2/models/${model}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': `parity-${at}` },
      body: JSON.stringify({
        inputs: [
          { name: 'departed', datatype: 'INT64', shape: [batch.length, 1], data: batch.map((r) => epochOf(r.departed)) },
          { name: 'miles', datatype: 'FP32', shape: [batch.length, 1], data: batch.map((r) => r.miles) },
          { name: 'airport', datatype: 'BYTES', shape: [batch.length, 1], data: batch.map((r) => r.airport) },
        ],
      }),
    });
    const body = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
    expect(res.status).toBe(200);
    const served = body.outputs.find((o) => o.name === 'probability')!.data;
    batch.forEach((r, i) => (maxDiff = Math.max(maxDiff, Math.abs(served[i]! - (scoreOf.get(key(epochOf(r.departed), r.miles, r.airport)) as number)))));
  }
  expect(maxDiff).toBeLessThan(1e-5);

  // Monitoring reads the logged timestamps and derives the features as the graph did: each is compared with its training baseline.
  await waitFor('the parity rows in the prediction log', async () => {
    const r = await services.pg.query(`select count(*)::int n from prediction_log where request_id like 'parity-%'`);
    return r.rows[0].n === sample.length ? true : undefined;
  });
  const windowEnd = ((await services.pg.query(`select now() as t`)).rows[0].t as Date).toISOString();
  const acts = createMonitoringActivities({ db: services.runtime.db, artifacts: services.runtime.artifacts });
  const report: MonitoringReport = await new MockActivityEnvironment().run(acts.monitoringCheck, { model, windowStart, windowEnd, labelsSince: windowStart, thresholds: monitoringThresholds.parse({}) });
  expect(report.rows).toBe(sample.length);
  expect(Object.keys(report.features).sort()).toEqual(['airport', 'hour', 'miles', 'month', 'weekday']);
  expect(report.quality).toMatchObject({ missingInputs: [], unexpectedInputs: [] });
  // Rows drawn like the training data: had monitoring derived other values than the graph, these would be far apart.
  for (const f of ['hour', 'weekday', 'month']) expect({ f, psi: report.features[f]!.psi }).toEqual({ f, psi: expect.any(Number) });
  for (const f of ['hour', 'weekday', 'month']) expect({ f, small: report.features[f]!.psi! < 0.1 }).toEqual({ f, small: true });

  // The timestamp as text, or missing, is refused by name: an INT64 input has no missing value.
  const one = (departed: unknown) =>
    fetch(`${services.server.url}/v2/models/${model}/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'departed', datatype: 'INT64', shape: [1, 1], data: [departed] }, { name: 'miles', datatype: 'FP32', shape: [1, 1], data: [500] }, { name: 'airport', datatype: 'BYTES', shape: [1, 1], data: ['ORD'] }] }),
    });
  for (const bad of [sample[0]!.departed, null, 1.5]) {
    const res = await one(bad);
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 400, body: expect.stringContaining('input departed[0]') });
  }
});
