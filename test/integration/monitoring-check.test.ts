import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { createMonitoringActivities } from '../../activities/monitoring';
import { readVerified } from '../../activities/data/sources';
import type { FeatureSpec, Table } from '../../activities/ml/dataset';
import { createSession, scoreTable } from '../../activities/training/scoring';
import { getModelByName, getModelVersion, registerModelVersion, setAlias, upsertModel } from '../../infra/db/repositories';
import type { WorkerRuntime } from '../../workers/runtime';
import type { BinaryTrainingResult as TrainingResult } from '../../workflows/continuous-training';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { monitoringThresholds, type BinaryPerformance, type MonitoringCheckInput, type MonitoringReport } from '../../workflows/contracts/lifecycle';
import { createTemporalEnv, independentPg, openTestRuntime } from '../helpers/real';
import { withTestWorkers, workflowBundle } from '../helpers/workers';
import { checkMetrics } from '../helpers/promtool';
import { startWorkerMetrics } from '../../workers/metrics-server';
import { createLogger } from '../../infra/log';

/**
 * The monitoring check on the real stores: a model trained by continuousTraining on January
 * flights and set in production, served traffic written to the prediction log from real flights
 * rows (January like training, February, and a copy with distances tripled and a new airport),
 * labels attached, and reports read back from PostgreSQL over a second connection.
 */

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let model: string;
let trained: TrainingResult;
const bucket = `mon-${randomUUID().slice(0, 8)}`;
// The preset's: the served model takes the flight's time (`date`, epoch seconds) and derives hour and day of week.
const FEATURES: FeatureSpec[] = [
  { name: 'hour', kind: 'numeric', column: 'date', transform: 'hour' },
  { name: 'dayofweek', kind: 'numeric', column: 'date', transform: 'dayofweek' },
  { name: 'distance', kind: 'numeric' },
  { name: 'origin', kind: 'categorical' },
  { name: 'destination', kind: 'categorical' },
];
const ROWS = 8000;
const HOUR = 3600_000;
const base = Date.parse('2026-06-01T00:00:00Z');
const window = (k: number) => ({ windowStart: new Date(base + k * HOUR).toISOString(), windowEnd: new Date(base + (k + 1) * HOUR).toISOString(), labelsSince: new Date(base + k * HOUR).toISOString() });
const thresholds = monitoringThresholds.parse({});

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket)]);
  pg = await independentPg();
  await workflowBundle();
  model = `mon-${randomUUID().slice(0, 8)}`;
  trained = await withTestWorkers(
    env,
    runtime,
    async () => {
      const spec = { model, dataset: { flights: { from: '2001-01', to: '2001-01' } }, preset: 'flights-delay' as const, sampleRows: 20_000, hyperparameters: { rounds: 10, maxDepth: 4 }, resources: { gpu: 0 } };
      const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `ct-${model}`, args: [spec] });
      return (await handle.result()) as TrainingResult;
    },
    { queues: [TASK_QUEUES.control, TASK_QUEUES.cpu] },
  );
  const m = (await getModelByName(runtime.db, model))!;
  const mv = (await getModelVersion(runtime.db, m.id, trained.version))!;
  await setAlias(runtime.db, m.id, 'production', mv.id);
}, 300_000);

afterAll(async () => {
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
});

/** Real flights rows as the server would see them, with their delay label. */
async function flights(where: string, rows: number, seed: number): Promise<Table> {
  return withDuckDb(async (c) => {
    const r = await c.runAndReadAll(
      `SELECT hour("date")::FLOAT, dayofweek("date")::FLOAT, distance::FLOAT, origin::VARCHAR, destination::VARCHAR, (delay > 15)::UTINYINT, floor(epoch("date"))::BIGINT
       FROM read_parquet(${literal(flightsParquetPath())}, file_row_number = true) WHERE delay IS NOT NULL AND ${where} ORDER BY hash(file_row_number + ${seed}) LIMIT ${rows}`,
    );
    const cols = r.getColumns();
    const n = r.currentRowCount;
    return {
      rows: n,
      features: FEATURES,
      numeric: { hour: Float32Array.from(cols[0]!, Number), dayofweek: Float32Array.from(cols[1]!, Number), distance: Float32Array.from(cols[2]!, Number) },
      categorical: { origin: cols[3]!.map(String), destination: cols[4]!.map(String) },
      timestamps: { date: BigInt64Array.from(cols[6]!, (v) => BigInt(v as bigint)) },
      label: Uint8Array.from(cols[5]!, Number),
    };
  });
}

/** Scores rows with the production model (as the server does) and logs them in window k, every row labelled within it. */
async function serve(table: Table, k: number, tag: string, opts: { extraInputs?: (i: number) => Record<string, unknown>; labelled?: boolean } = {}): Promise<void> {
  const m = (await getModelByName(runtime.db, model))!;
  const mv = (await getModelVersion(runtime.db, m.id, trained.version))!;
  const onnx = await runtime.db.selectFrom('artifacts').select(['uri', 'sha256']).where('id', '=', mv.onnx_artifact_id!).executeTakeFirstOrThrow();
  const session = await createSession(await readVerified(runtime.artifacts, onnx));
  const probs = await scoreTable(session, table, FEATURES);
  await session.release();
  const start = base + k * HOUR;
  const rows = Array.from({ length: table.rows }, (_, i) => ({
    request_id: `${model}-${tag}-${i}`,
    model_id: m.id,
    model_version_id: mv.id,
    ts: new Date(start + 1 + Math.floor((i * (HOUR - 2)) / table.rows)),
    inputs: JSON.stringify({
      date: Number(table.timestamps!.date![i]),
      distance: table.numeric.distance![i],
      origin: table.categorical.origin![i],
      destination: table.categorical.destination![i],
      ...opts.extraInputs?.(i),
    }),
    outputs: JSON.stringify({ probability: probs[i], role: 'stable' }),
    latency_ms: 1,
    label: opts.labelled === false ? null : JSON.stringify(i % 2 ? table.label[i] === 1 : table.label[i]),
    labeled_at: opts.labelled === false ? null : new Date(start + HOUR - 1000),
  }));
  for (let i = 0; i < rows.length; i += 1000) await runtime.db.insertInto('prediction_log').values(rows.slice(i, i + 1000)).execute();
}

async function check(k: number, name = model, attempt = 1): Promise<MonitoringReport> {
  const acts = createMonitoringActivities({ db: runtime.db, artifacts: runtime.artifacts });
  const input: MonitoringCheckInput = { model: name, ...window(k), thresholds };
  return new MockActivityEnvironment({ attempt }).run(acts.monitoringCheck, input);
}

async function reportRows(k: number) {
  const w = window(k);
  const r = await pg.query(
    `select r.id::text, r.breach, r.figures, mv.version from monitoring_reports r join models m on m.id = r.model_id left join model_versions mv on mv.id = r.model_version_id
     where m.name = $1 and r.kind = 'check' and r.window_start = $2 and r.window_end = $3`,
    [model, w.windowStart, w.windowEnd],
  );
  return r.rows as Array<{ id: string; breach: boolean; figures: MonitoringReport; version: number | null }>;
}

test('traffic like training: no breach; the same window checked twice is one report row', async () => {
  const jan = await flights(`"date" < TIMESTAMP '2001-01-25'`, ROWS, 11);
  await serve(jan, 0, 'jan');
  const first = await check(0);
  const again = await check(0, model, 2);
  expect(first.version).toBe(trained.version);
  expect(first.rows).toBe(ROWS);
  expect(first.labeledRows).toBe(ROWS);
  expect(first.breach).toBe(false);
  expect(['ok', 'warn']).toContain(first.level);
  expect(Object.keys(first.features).sort()).toEqual(FEATURES.map((f) => f.name).sort());
  for (const f of ['hour', 'dayofweek', 'distance']) expect(first.features[f]!.ks).toBeLessThan(0.05);
  expect(first.quality).toEqual({ missingInputs: [], unexpectedInputs: [], schemaChanged: false });
  expect(first.prediction!.psi).toBeLessThan(0.1);
  expect((first.performance as BinaryPerformance).auc).toBeGreaterThan(0.55);
  expect((first.performance as BinaryPerformance).offlineAuc).toBeCloseTo(trained.metrics.auc, 10);
  expect(again.reportId).toBe(first.reportId);
  expect(again).toEqual(first);

  const rows = await reportRows(0);
  expect(rows).toHaveLength(1);
  expect(rows[0]!.id).toBe(first.reportId);
  expect(rows[0]!.breach).toBe(false);
  expect(rows[0]!.version).toBe(trained.version);
  expect(rows[0]!.figures).toEqual(JSON.parse(JSON.stringify(first)));
}, 120_000);

test('distances tripled and a new airport: breach, with the reasons', async () => {
  const jan = await flights(`"date" < TIMESTAMP '2001-01-25'`, ROWS, 12);
  for (let i = 0; i < jan.rows; i++) {
    jan.numeric.distance![i]! *= 3;
    if (i % 5 === 0) jan.categorical.origin![i] = 'ZZZ';
  }
  await serve(jan, 1, 'drift');
  const report = await check(1);
  expect(report.level).toBe('act');
  expect(report.breach).toBe(true);
  expect(report.features.distance!.psi).toBeGreaterThan(1);
  expect(report.features.distance!.ks).toBeGreaterThan(0.4);
  expect(report.features.origin!.unseenFraction).toBeCloseTo(0.2, 2);
  expect(report.reasons).toEqual(expect.arrayContaining([expect.stringMatching(/^distance PSI \d+\.\d\d ≥ 0\.2$/), expect.stringMatching(/^distance KS 0\.\d\d ≥ 0\.2$/), 'origin unseen categories 20.0% > 5.0%']));
  expect(report.features.hour!.psi).toBeLessThan(0.1);
  const rows = await reportRows(1);
  expect(rows).toHaveLength(1);
  expect(rows[0]!.breach).toBe(true);
  expect(rows[0]!.figures.reasons).toEqual(report.reasons);
}, 120_000);

test('February traffic, a schema change, and a window with too few rows', async () => {
  const feb = await flights(`month("date") = 2`, ROWS, 13);
  await serve(feb, 2, 'feb');
  const report = await check(2);
  expect(report.level).not.toBe('insufficient-data');
  expect(report.labeledRows).toBe(ROWS);
  // Real month-to-month movement: recorded, whatever the verdict.
  expect((report.performance as BinaryPerformance).positiveRate).toBeGreaterThan(0.1);
  expect((await reportRows(2))[0]!.figures.level).toBe(report.level);

  const few = await flights(`month("date") = 1`, 50, 14);
  await serve(few, 3, 'few', { extraInputs: (i) => (i === 0 ? { carrier: 'AA' } : {}) });
  const small = await check(3);
  expect(small.level).toBe('insufficient-data');
  expect(small.breach).toBe(false);
  expect(small.quality).toEqual({ missingInputs: [], unexpectedInputs: ['carrier'], schemaChanged: true });
  expect(small.reasons[0]).toMatch(/^50 rows \(< 500\) and 50 labelled rows \(< 200\)/);
  expect((await reportRows(3))[0]!.breach).toBe(false);

  // Just past minRows, traffic like training must not raise a false alarm: ~250 airports at 600
  // rows is where category-by-category PSI is mostly sampling noise.
  const justEnough = await flights(`"date" < TIMESTAMP '2001-01-25'`, 600, 15);
  await serve(justEnough, 4, 'just-enough', { labelled: false });
  const quiet = await check(4);
  expect(quiet.rows).toBe(600);
  expect(quiet.labeledRows).toBe(0);
  expect(quiet.breach).toBe(false);
  expect(quiet.features.origin!.psi).toBeLessThan(thresholds.psiAct);
  expect(quiet.features.destination!.psi).toBeLessThan(thresholds.psiAct);

  // Nothing served in a window: a report that says so, figures at rest.
  const empty = await check(5);
  expect(empty).toMatchObject({ rows: 0, labeledRows: 0, level: 'insufficient-data', breach: false });
  expect(empty.features.origin).toMatchObject({ psi: null, js: null, missingFraction: 0, unseenFraction: 0, notComputed: { psi: expect.any(String), js: expect.any(String) } });
  expect(empty.prediction).toBeUndefined();
}, 120_000);

test('no production version: insufficient-data report; unknown model: NotFound', async () => {
  const other = `mon-none-${randomUUID().slice(0, 6)}`;
  await upsertModel(runtime.db, other);
  const r = await check(0, other);
  expect(r.level).toBe('insufficient-data');
  expect(r.reasons).toEqual([`model ${other} has no production version`]);
  const row = await pg.query(`select breach from monitoring_reports r join models m on m.id = r.model_id where m.name = $1`, [other]);
  expect(row.rows).toEqual([{ breach: false }]);
  await expect(check(0, `mon-missing-${randomUUID().slice(0, 6)}`)).rejects.toMatchObject({ type: 'NotFound', nonRetryable: true });
  await expect(new MockActivityEnvironment().run(createMonitoringActivities({ db: runtime.db, artifacts: runtime.artifacts }).monitoringCheck, { model, ...window(0), windowEnd: window(0).windowStart, thresholds })).rejects.toMatchObject({
    type: 'InvalidInput',
    message: expect.stringContaining('windowStart'),
  });
});

test('a check that fails writes the report row of its window with the step and the error', async () => {
  const other = `mon-bad-${randomUUID().slice(0, 6)}`;
  const m = await upsertModel(runtime.db, other);
  const mv = await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: `bad-${other}`, status: 'registered', metrics: {}, onnxArtifactId: null, inputSignature: { not: 'a list' }, outputSignature: [] });
  await setAlias(runtime.db, m.id, 'production', mv.id);
  await expect(check(3, other, 2)).rejects.toMatchObject({ type: 'InvalidSignature' });
  const w = window(3);
  const rows = await pg.query(`select r.breach, r.figures from monitoring_reports r join models m on m.id = r.model_id where m.name = $1 and r.window_start = $2 and r.window_end = $3`, [other, w.windowStart, w.windowEnd]);
  expect(rows.rows).toHaveLength(1);
  expect(rows.rows[0].breach).toBe(false);
  expect(rows.rows[0].figures).toMatchObject({ level: 'error', attempt: 2, failedStep: 'start', error: expect.stringContaining('input signature') });
});

test("a worker's /metrics: the latest check's figures per model and version from the store, step durations, lint-clean", async () => {
  const metrics = await startWorkerMetrics({ db: runtime.db, log: createLogger('test-metrics'), host: '127.0.0.1', port: 0, storeFigures: true, queues: [TASK_QUEUES.control] });
  try {
    const text = await (await fetch(`${metrics.url}/metrics`)).text();
    expect(await checkMetrics(text)).toEqual({ code: 0, output: '' });
    const newest = await pg.query(
      `select r.figures from monitoring_reports r join models m on m.id = r.model_id where m.name = $1 and r.kind = 'check' order by r.window_end desc, r.id desc limit 1`,
      [model],
    );
    const f = newest.rows[0].figures as MonitoringReport;
    const value = (name: string, labels: string) => {
      const m = new RegExp(`^${name}\\{${labels.replace(/[{}]/g, '\\$&')}\\} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const v = `model="${model}",version="${f.version}"`;
    // Every feature's PSI as the report has it; one that could not be computed (null) is absent, not 0.
    expect(Object.keys(f.features).length).toBeGreaterThan(0);
    for (const [feature, fig] of Object.entries(f.features)) {
      if (fig.psi === null) expect(value('mlops_monitoring_feature_psi', `${v},feature="${feature}"`)).toBeUndefined();
      else expect(value('mlops_monitoring_feature_psi', `${v},feature="${feature}"`)).toBeCloseTo(fig.psi, 12);
    }
    expect(value('mlops_monitoring_rows', v)).toBe(f.rows);
    expect(value('mlops_monitoring_verdict', `${v},level="${f.level}"`)).toBe(1);
    expect(value('mlops_monitoring_verdict', `${v},level="${f.level === 'ok' ? 'act' : 'ok'}"`)).toBe(0);
    // The training in beforeAll ran its steps in this process: their durations are here.
    expect(value('mlops_step_duration_seconds_count', 'step="train",outcome="succeeded"')).toBeGreaterThanOrEqual(1);
    const runs = await pg.query(`select count(*)::int n from pipeline_runs where pipeline = 'continuousTraining' and status = 'succeeded'`);
    expect(value('mlops_pipeline_runs', 'pipeline="continuousTraining",status="succeeded"')).toBe(runs.rows[0].n);
  } finally {
    await metrics.close();
  }
});
