import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Table } from '../../activities/ml/dataset';
import { multiclassMetrics } from '../../activities/ml/metrics';
import type { MulticlassTrainingResult } from '../../workflows/continuous-training';
import type { PromotionInput } from '../../workflows/promotion';
import { MODE_FEATURES, modesCsv, syntheticMulticlass } from '../helpers/synthetic-multiclass';
import { independentS3 } from '../helpers/real';
import { useServingServices } from '../helpers/services';
import { modelLoop } from '../helpers/loop';
import { checkMetrics } from '../helpers/promtool';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { createLogger } from '../../infra/log';
import { startWorkerMetrics } from '../../workers/metrics-server';
import { requestInputs } from '../../activities/ml/model-inputs';
import { splitBinaryBody } from '../../workers/serving/oip-binary';

/**
 * A multiclass task through the whole loop on real services (Temporal, PostgreSQL, MinIO, the
 * model server over loopback), on travel modes the project generates and the user brings as a
 * CSV in S3: train → promote through canary (judged on the log loss of the true class once labels
 * arrive) → serve probabilities and the class → monitoring with late labels from /feedback. The
 * registry's, the server's and monitoring's figures must agree.
 */

jest.setTimeout(600_000);

const TOKEN = 'multiclass-loop-token-0123';
const bucket = `mcl-${randomUUID().slice(0, 8)}`;
const model = `modes-${randomUUID().slice(0, 8)}`;
const CLASSES = ['bike', 'bus', 'car', 'train'];
/** What a model trained on swapped labels predicts instead: confidently the wrong mode. */
const SWAP: Record<string, string> = { bike: 'train', bus: 'car', car: 'bus', train: 'bike' };
const services = useServingServices(bucket, TOKEN);
const loop = modelLoop(services, model, TOKEN);
const { feedback, promote, production, check } = loop;
let dir: string;
/** The rows the application serves and later labels: drawn like the training data, never trained on. */
let traffic: Table;
const trueMode = (i: number) => CLASSES[traffic.label[i]!]!;

async function writeCsv(file: string, t: Table, swap = false): Promise<void> {
  await fs.writeFile(file, modesCsv(t, (i) => (swap ? SWAP[CLASSES[t.label[i]!]!]! : CLASSES[t.label[i]!]!)));
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'multiclass-loop-'));
  await writeCsv(path.join(dir, 'modes.csv'), syntheticMulticlass(6000, 31, CLASSES));
  await writeCsv(path.join(dir, 'swapped.csv'), syntheticMulticlass(6000, 32, CLASSES), true);
  const s3 = independentS3();
  await s3.fPutObject(bucket, 'datasets/modes.csv', path.join(dir, 'modes.csv'));
  await s3.fPutObject(bucket, 'datasets/swapped.csv', path.join(dir, 'swapped.csv'));
  // The application's rows, under the CSV's column names.
  const t = syntheticMulticlass(4000, 33, CLASSES);
  traffic = { ...t, features: MODE_FEATURES, numeric: { distance_km: t.numeric.x1!, hour: t.numeric.hour! } };
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function train(csv: string, rounds: number): Promise<MulticlassTrainingResult> {
  const spec = {
    dataset: { uris: [`s3://${bucket}/datasets/${csv}`] },
    features: MODE_FEATURES,
    label: { column: 'mode', kind: 'multiclass' },
    split: { kind: 'random', seed: 5, testFraction: 0.25 },
    hyperparameters: { rounds, maxDepth: 4 },
    onFailure: 'fail',
    // The swapped model is as good on its own data: the comparison with production is the canary's, on today's labels.
    gates: { onIncomparableChampion: 'accept', maxRegression: 1 },
  };
  const result = await loop.train(spec);
  expect(result).toMatchObject({ status: 'registered', task: 'multiclass', classes: CLASSES, reasons: [] });
  return result as MulticlassTrainingResult;
}

interface Answer {
  probabilities: number[];
  label: string;
}

/** One traffic row through the server as an application sends it: the probabilities and the class it got back. */
async function infer(i: number, requestId: string): Promise<Answer | undefined> {
  const inputs = requestInputs(traffic, traffic.features, i, i + 1);
  const res = await fetch(`${services.server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': requestId }, body: JSON.stringify({ inputs }) });
  if (!res.ok) {
    await res.arrayBuffer();
    return undefined;
  }
  const answer = (await res.json()) as { outputs: Array<{ name: string; datatype: string; shape: number[]; data: unknown[] }> };
  expect(answer.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
    ['probabilities', 'FP32', [1, 4]],
    ['label', 'BYTES', [1, 1]],
  ]);
  return { probabilities: answer.outputs[0]!.data as number[], label: answer.outputs[1]!.data[0] as string };
}

/** Steady labelled traffic while a promotion bakes: each row's true mode arrives 300 ms later. */
const labelledTraffic = (tag: string) => loop.labelledTraffic(tag, traffic.rows, async (i, id) => (await infer(i, id)) !== undefined, trueMode);

const fast = { bakeSeconds: 2, maxBakeSeconds: 90, canarySteps: [30, 100], loadTest: { seconds: 1, concurrency: 4 } } satisfies Partial<PromotionInput>;

/** A window of served rows [from, from + n) and their labels (the true mode, or its swap), once both are in the log. */
async function servedWindow(tag: string, from: number, n: number, swap = false): Promise<{ start: string; end: string; answers: Answer[]; labels: string[] }> {
  const start = await loop.now();
  const answers: Answer[] = [];
  const labels: Array<{ request_id: string; label: string }> = [];
  for (let k = 0; k < n; k++) {
    const i = (from + k) % traffic.rows;
    const a = await infer(i, `${tag}-${k}`);
    if (a === undefined) throw new Error(`row ${i} was not served`);
    answers.push(a);
    labels.push({ request_id: `${tag}-${k}`, label: swap ? SWAP[trueMode(i)]! : trueMode(i) });
  }
  const answer = (await (await feedback({ labels })).json()) as { attached: number; unknown: number };
  expect(answer).toEqual({ attached: n, unknown: 0 });
  await loop.labelled(tag, n);
  const end = await loop.now();
  return { start, end, answers, labels: labels.map((l) => l.label) };
}

test('train → canary judged on log loss → serve probabilities and the class → monitoring with late labels: the registry, the server and monitoring agree', async () => {
  const v1 = await train('modes.csv', 20);
  expect((await promote({ model, version: v1.version, strategy: 'direct', ...fast })).outcome).toBe('promoted');
  const v2 = await train('modes.csv', 30);
  const swapped = await train('swapped.csv', 30);

  // The label the server answers is the likeliest class of the probabilities it answers.
  const one = (await infer(0, 'first'))!;
  expect(one.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  expect(one.label).toBe(CLASSES[one.probabilities.indexOf(Math.max(...one.probabilities))]);
  const meta = (await (await fetch(`${services.server.url}/v2/models/${model}`)).json()) as { outputs: unknown };
  expect(meta.outputs).toEqual([
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 4] },
    { name: 'label', datatype: 'BYTES', shape: [-1, 1] },
  ]);
  // The binary tensor data extension answers the same, the classes as length-prefixed bytes.
  const binary = await fetch(`${services.server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: requestInputs(traffic, traffic.features, 0, 1), parameters: { binary_data_output: true } }),
  });
  const split = splitBinaryBody(Buffer.from(await binary.arrayBuffer()), binary.headers.get('inference-header-content-length')!);
  const header = split.json as { outputs: Array<{ name: string; parameters: { binary_data_size: number } }> };
  expect(header.outputs.map((o) => [o.name, o.parameters.binary_data_size])).toEqual([
    ['probabilities', 16],
    ['label', 4 + Buffer.byteLength(one.label)],
  ]);
  expect([0, 1, 2, 3].map((c) => split.binary!.readFloatLE(c * 4))).toEqual(one.probabilities.map(Math.fround));
  expect(split.binary!.subarray(20).toString('utf8')).toBe(one.label);

  // A better candidate through canary while labels arrive: its figures are a multiclass model's, the true class's log loss on labelled rows.
  let load = labelledTraffic('canary-good');
  const good = await promote({ model, version: v2.version, strategy: 'canary', ...fast, gates: { maxP99Ms: 500, minCanaryRows: 200, minLabeledRows: 10, maxLogLossIncrease: 0.1 } }).finally(() => load.stop());
  expect([good.outcome, good.reason]).toEqual(['promoted', undefined]);
  const stage = good.figures['canary 30%'] as { task: string; canaryLabeled: number; canaryLogLoss: number | null; stableLogLoss: number | null; predictionPsi: number };
  expect(stage.task).toBe('multiclass');
  expect(stage.predictionPsi).toBeLessThan(0.2);
  expect(stage.canaryLabeled).toBeGreaterThan(0);
  expect(stage.canaryLogLoss).toBeLessThan(stage.stableLogLoss! + 0.1);
  expect(await production()).toBe(v2.version);

  // A candidate confidently wrong about every mode: its prediction shift is let through on purpose, and its log loss on the labels rolls it back.
  load = labelledTraffic('canary-swapped');
  const bad = await promote({ model, version: swapped.version, strategy: 'canary', ...fast, gates: { maxP99Ms: 500, maxPredictionPsi: 100, minCanaryRows: 60, minLabeledRows: 20 } }).finally(() => load.stop());
  expect(bad.outcome).toBe('rolled-back');
  expect(bad.reason).toMatch(/^canary 30%: log loss \S+ vs stable \S+ on labelled rows \(\+\S+ > \S+; \d+ labelled\)$/);
  expect(await production()).toBe(v2.version);

  // A class the model never saw is refused, naming it; nothing of that batch is attached.
  const refused = await feedback({ labels: [{ request_id: 'canary-good-0', label: 'car' }, { request_id: 'canary-good-1', label: 'plane' }] });
  expect(refused.status).toBe(400);
  expect(((await refused.json()) as { error: string }).error).toBe('invalid feedback: labels.1.label: "plane" is not a label this model takes; expected one of its classes "bike", "bus", "car", "train" (multiclass)');

  // Served traffic like training, its true modes arriving late: monitoring's accuracy is the one of what the server answered.
  const registry = (await services.pg.query(`select mv.metrics from model_versions mv join models m on m.id = mv.model_id where m.name = $1 and mv.version = $2`, [model, v2.version])).rows[0].metrics as { accuracy: number; macroF1: number; logLoss: number };
  expect(registry.macroF1).toBeCloseTo(v2.metrics.macroF1, 10);
  const today = await servedWindow('today', 0, 600);
  const ok = await check(today);
  const served = multiclassMetrics(
    today.answers.flatMap((a) => a.probabilities),
    today.labels.map((l) => CLASSES.indexOf(l)),
    4,
  );
  expect(served.accuracy).toBeCloseTo(today.answers.filter((a, i) => a.label === today.labels[i]).length / 600, 10);
  expect(ok).toMatchObject({ version: v2.version, rows: 600, labeledRows: 600, breach: false });
  const perf = ok.performance as unknown as { task: string; accuracy: number; macroF1: number; logLoss: number; offlineAccuracy: number };
  expect(perf.task).toBe('multiclass');
  expect(perf.accuracy).toBeCloseTo(served.accuracy, 6);
  expect(perf.macroF1).toBeCloseTo(served.macroF1, 6);
  expect(perf.logLoss).toBeCloseTo(served.logLoss, 4);
  expect(perf.offlineAccuracy).toBeCloseTo(registry.accuracy, 10);
  // Prediction drift compares the served classes' shares with the model's on its test split.
  expect(ok.prediction!.psi).toBeLessThan(0.2);

  // The world moved: every mode is now its swap. Monitoring acts, naming accuracy.
  const later = await servedWindow('later', 600, 600, true);
  const decayed = await check(later);
  expect(decayed).toMatchObject({ level: 'act', breach: true, labeledRows: 600 });
  expect(decayed.reasons).toEqual(expect.arrayContaining([expect.stringMatching(/accuracy/)]));
  const row = await services.pg.query(`select r.breach, r.figures->'performance' as performance from monitoring_reports r join models m on m.id = r.model_id where m.name = $1 and r.kind = 'check' and r.window_end = $2`, [model, later.end]);
  expect(row.rows).toEqual([{ breach: true, performance: expect.objectContaining({ task: 'multiclass', offlineAccuracy: registry.accuracy }) }]);

  // What Prometheus scrapes is the newest report's accuracy and macro-F1, beside the offline accuracy; no AUC or RMSE for a multiclass model.
  const metrics = await startWorkerMetrics({ db: services.runtime.db, log: createLogger('test-metrics'), host: '127.0.0.1', port: 0, storeFigures: true, queues: [TASK_QUEUES.control] });
  try {
    const text = await (await fetch(`${metrics.url}/metrics`)).text();
    expect(await checkMetrics(text)).toEqual({ code: 0, output: '' });
    const gauge = (name: string) => new RegExp(`^${name}\\{model="${model}",version="${v2.version}"\\} (\\S+)$`, 'm').exec(text)?.[1];
    const decayedPerf = decayed.performance as unknown as { accuracy: number; macroF1: number };
    expect(Number(gauge('mlops_monitoring_online_accuracy'))).toBeCloseTo(decayedPerf.accuracy, 10);
    expect(Number(gauge('mlops_monitoring_online_macro_f1'))).toBeCloseTo(decayedPerf.macroF1, 10);
    expect(Number(gauge('mlops_monitoring_offline_accuracy'))).toBeCloseTo(registry.accuracy, 10);
    expect(gauge('mlops_monitoring_online_auc')).toBeUndefined();
    expect(gauge('mlops_monitoring_online_rmse')).toBeUndefined();
  } finally {
    await metrics.close();
  }
});
