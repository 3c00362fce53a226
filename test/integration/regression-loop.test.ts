import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Table } from '../../activities/ml/dataset';
import { regressionMetrics } from '../../activities/ml/metrics';
import type { RegressionTrainingResult } from '../../workflows/continuous-training';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { RegressionPerformance } from '../../workflows/contracts/lifecycle';
import type { PromotionInput } from '../../workflows/promotion';
import { syntheticRegression } from '../helpers/synthetic-regression';
import { independentS3 } from '../helpers/real';
import { useServingServices } from '../helpers/services';
import { modelLoop } from '../helpers/loop';
import { checkMetrics } from '../helpers/promtool';
import { createLogger } from '../../infra/log';
import { startWorkerMetrics } from '../../workers/metrics-server';
import { requestInputs } from '../../activities/ml/model-inputs';

/**
 * A regression through the whole loop on real services (Temporal, PostgreSQL, MinIO, the model
 * server over loopback), on prices the project generates and the user brings as a CSV in S3:
 * train → promote through canary (judged on RMSE once labels arrive) → serve → monitoring with
 * late labels from /feedback. The registry's, the server's and monitoring's figures must agree.
 */

jest.setTimeout(600_000);

const TOKEN = 'regression-loop-token-0123';
const bucket = `reg-${randomUUID().slice(0, 8)}`;
const model = `price-${randomUUID().slice(0, 8)}`;
const services = useServingServices(bucket, TOKEN);
const loop = modelLoop(services, model, TOKEN);
const { feedback, promote, production, check } = loop;
let dir: string;
/** The rows the application serves and later labels: drawn like the training data, never trained on. */
let traffic: Table;

async function writeCsv(file: string, t: Table): Promise<void> {
  const lines = ['x1,hour,origin,price'];
  for (let i = 0; i < t.rows; i++) lines.push(`${t.numeric.x1![i]},${t.numeric.hour![i]},${t.categorical.origin![i]},${t.label[i]}`);
  await fs.writeFile(file, lines.join('\n') + '\n');
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'regression-loop-'));
  await writeCsv(path.join(dir, 'prices.csv'), syntheticRegression(6000, 11, { offset: 50 }));
  // The same prices 40 higher: a candidate trained on them is confidently wrong about today's.
  await writeCsv(path.join(dir, 'shifted.csv'), syntheticRegression(6000, 12, { offset: 90 }));
  const s3 = independentS3();
  await s3.fPutObject(bucket, 'datasets/prices.csv', path.join(dir, 'prices.csv'));
  await s3.fPutObject(bucket, 'datasets/shifted.csv', path.join(dir, 'shifted.csv'));
  traffic = syntheticRegression(4000, 13, { offset: 50 });
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function train(csv: string, rounds: number): Promise<RegressionTrainingResult> {
  const spec = {
    dataset: { uris: [`s3://${bucket}/datasets/${csv}`] },
    features: [
      { name: 'x1', kind: 'numeric' },
      { name: 'hour', kind: 'numeric' },
      { name: 'origin', kind: 'categorical' },
    ],
    label: { column: 'price', kind: 'regression' },
    split: { kind: 'random', seed: 5, testFraction: 0.25 },
    hyperparameters: { rounds, maxDepth: 4 },
    onFailure: 'fail',
  };
  const result = await loop.train(spec);
  expect(result).toMatchObject({ status: 'registered', task: 'regression', reasons: [] });
  return result as RegressionTrainingResult;
}

/** One traffic row through the server as an application sends it; the prediction it got back. */
async function infer(i: number, requestId: string): Promise<number | undefined> {
  const inputs = requestInputs(traffic, traffic.features, i, i + 1);
  const res = await fetch(`${services.server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId }, body: JSON.stringify({ inputs }) });
  if (!res.ok) {
    await res.arrayBuffer();
    return undefined;
  }
  const answer = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
  expect(answer.outputs.map((o) => o.name)).toEqual(['prediction']);
  return answer.outputs[0]!.data[0];
}

/** Steady labelled traffic while a promotion bakes: each row's true price arrives 300 ms later. */
const labelledTraffic = (tag: string) => loop.labelledTraffic(tag, traffic.rows, async (i, id) => (await infer(i, id)) !== undefined, (i) => traffic.label[i]!);

const fast = { bakeSeconds: 2, maxBakeSeconds: 90, canarySteps: [30, 100], loadTest: { seconds: 1, concurrency: 4 } } satisfies Partial<PromotionInput>;

/** A window of served rows [from, from + n) and their labels (the true price, or one `shift` off), once both are in the log. */
async function servedWindow(tag: string, from: number, n: number, shift = 0): Promise<{ start: string; end: string; predictions: number[]; labels: number[] }> {
  const start = await loop.now();
  const predictions: number[] = [];
  const labels: Array<{ request_id: string; label: number }> = [];
  for (let k = 0; k < n; k++) {
    const i = (from + k) % traffic.rows;
    const p = await infer(i, `${tag}-${k}`);
    if (p === undefined) throw new Error(`row ${i} was not served`);
    predictions.push(p);
    labels.push({ request_id: `${tag}-${k}`, label: traffic.label[i]! + shift });
  }
  const answer = (await (await feedback({ labels })).json()) as { attached: number; unknown: number };
  expect(answer).toEqual({ attached: n, unknown: 0 });
  await loop.labelled(tag, n);
  const end = await loop.now();
  return { start, end, predictions, labels: labels.map((l) => l.label) };
}

test('train → canary judged on RMSE → serve → monitoring with late labels: the registry, services.server and monitoring agree', async () => {
  const v1 = await train('prices.csv', 30);
  expect((await promote({ model, version: v1.version, strategy: 'direct', ...fast })).outcome).toBe('promoted');
  const v2 = await train('prices.csv', 40);
  const shifted = await train('shifted.csv', 40);

  // A better candidate through canary while labels arrive: its figures are a regression's, RMSE on labelled rows.
  // 300 rows a stage: on fewer, the decile PSI of two samples of one distribution is mostly noise (about 9/n).
  let load = labelledTraffic('canary-good');
  const good = await promote({ model, version: v2.version, strategy: 'canary', ...fast, gates: { maxP99Ms: 500, minCanaryRows: 300, minLabeledRows: 10 } }).finally(() => load.stop());
  expect([good.outcome, good.reason]).toEqual(['promoted', undefined]);
  const stage = good.figures['canary 30%'] as { task: string; canaryLabeled: number; canaryRmse: number | null; stableRmse: number | null; predictionPsi: number; stableLogLoss?: unknown };
  expect(stage.task).toBe('regression');
  expect(stage.predictionPsi).toBeLessThan(0.2);
  expect(stage.stableLogLoss).toBeUndefined();
  expect(stage.canaryLabeled).toBeGreaterThan(0);
  expect(stage.canaryRmse).toBeGreaterThan(0);
  expect(stage.canaryRmse! / stage.stableRmse!).toBeLessThanOrEqual(1.05);
  expect(await production()).toBe(v2.version);

  // A candidate confidently 40 off: its prediction shift is let through on purpose, and its RMSE on the labels rolls it back.
  load = labelledTraffic('canary-shifted');
  const bad = await promote({ model, version: shifted.version, strategy: 'canary', ...fast, gates: { maxP99Ms: 500, maxPredictionPsi: 100, minCanaryRows: 80, minLabeledRows: 20 } }).finally(() => load.stop());
  expect(bad.outcome).toBe('rolled-back');
  expect(bad.reason).toMatch(/^canary 30%: RMSE \S+ vs stable \S+ on labelled rows \(\+\d+\.\d% > 5\.0%; \d+ labelled\)$/);
  const badStage = bad.figures['canary 30%'] as { canaryRmse: number; stableRmse: number; canaryLabeled: number };
  expect(badStage.canaryLabeled).toBeGreaterThanOrEqual(20);
  expect(badStage.canaryRmse).toBeGreaterThan(3 * badStage.stableRmse);
  expect(await production()).toBe(v2.version);

  // A label monitoring could not judge is refused, naming it; nothing of that batch is attached.
  const refused = await feedback({ labels: [{ request_id: 'canary-good-0', label: 3 }, { request_id: 'canary-good-1', label: 'cheap' }] });
  expect(refused.status).toBe(400);
  expect(((await refused.json()) as { error: string }).error).toBe('invalid feedback: labels.1.label: "cheap" is not a label this model takes; expected a finite number (regression)');

  // Served traffic like training, its true prices arriving late: monitoring's RMSE is the one of what the server answered.
  const registry = (await services.pg.query(`select (mv.metrics->>'rmse')::float8 as rmse from model_versions mv join models m on m.id = mv.model_id where m.name = $1 and mv.version = $2`, [model, v2.version])).rows[0] as { rmse: number };
  expect(registry.rmse).toBeCloseTo(v2.metrics.rmse, 10);
  const today = await servedWindow('today', 0, 600);
  const ok = await check(today, { maxRmseIncrease: 0.3 });
  const served = regressionMetrics(today.predictions, today.labels);
  expect(ok).toMatchObject({ version: v2.version, rows: 600, labeledRows: 600, breach: false });
  const perf = ok.performance as RegressionPerformance;
  expect(perf.task).toBe('regression');
  expect(perf.rmse).toBeCloseTo(served.rmse, 6);
  expect(perf.mae).toBeCloseTo(served.mae, 6);
  expect(perf.meanPrediction).toBeCloseTo(served.meanPrediction, 6);
  expect(perf.offlineRmse).toBeCloseTo(registry.rmse, 10);
  expect(ok.reasons.filter((r) => /RMSE|bias/.test(r))).toEqual([]);
  // Prediction drift compares the served predictions with the model's on its test split.
  expect(ok.prediction!.psi).toBeLessThan(0.2);
  expect(ok.prediction!.mean).toBeCloseTo(served.meanPrediction, 3);

  // The world moved: prices now run two offline RMSEs above what the model says. Monitoring acts, naming RMSE and bias.
  const later = await servedWindow('later', 600, 600, 2 * registry.rmse);
  const decayed = await check(later);
  expect(decayed).toMatchObject({ level: 'act', breach: true, labeledRows: 600 });
  expect(decayed.reasons).toEqual(expect.arrayContaining([expect.stringMatching(/^RMSE \S+ vs \S+ offline \(\+\d+\.\d% > 10\.0%\)$/), expect.stringMatching(/^bias: mean label \S+ vs mean prediction \S+ \(\d\.\d\d × offline RMSE > 0\.5\)$/)]));
  const row = await services.pg.query(`select r.breach, r.figures->'performance' as performance from monitoring_reports r join models m on m.id = r.model_id where m.name = $1 and r.kind = 'check' and r.window_end = $2`, [model, later.end]);
  expect(row.rows).toEqual([{ breach: true, performance: expect.objectContaining({ task: 'regression', offlineRmse: registry.rmse }) }]);

  // What Prometheus scrapes is the newest report's RMSE, beside the offline one; no AUC for a regression.
  const metrics = await startWorkerMetrics({ db: services.runtime.db, log: createLogger('test-metrics'), host: '127.0.0.1', port: 0, storeFigures: true, queues: [TASK_QUEUES.control] });
  try {
    const text = await (await fetch(`${metrics.url}/metrics`)).text();
    expect(await checkMetrics(text)).toEqual({ code: 0, output: '' });
    const gauge = (name: string) => new RegExp(`^${name}\\{model="${model}",version="${v2.version}"\\} (\\S+)$`, 'm').exec(text)?.[1];
    expect(Number(gauge('mlops_monitoring_online_rmse'))).toBeCloseTo((decayed.performance as RegressionPerformance).rmse, 10);
    expect(Number(gauge('mlops_monitoring_offline_rmse'))).toBeCloseTo(registry.rmse, 10);
    expect(gauge('mlops_monitoring_online_auc')).toBeUndefined();
  } finally {
    await metrics.close();
  }
});
