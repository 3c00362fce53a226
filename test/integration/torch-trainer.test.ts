import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { literal, withDuckDb } from '../../activities/data/duck';
import { builtinCommandTrainers } from '../../infra/config';
import { PROJECT_ROOT } from '../../infra/paths';
import type { WorkerRuntime } from '../../workers/runtime';
import type { MulticlassTrainingResult, RegressionTrainingResult } from '../../workflows/continuous-training';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { PipelineStatus } from '../../workflows/pipeline';
import { waitForCheckpoint } from '../helpers/checkpoints';
import { createTemporalEnv, independentPg, openTestRuntime } from '../helpers/real';
import { readmeBlock, runReadmeLine } from '../helpers/readme-commands';
import { startDevWorker, workerGroup } from '../helpers/run-entry';
import { withTestWorkers } from '../helpers/workers';

/**
 * The PyTorch example trainer (examples/trainers/torch_mlp.py) under the command contract: the
 * README's example trains a multiclass model on the GPU queue and passes the parity gate; a
 * worker killed with -9 mid-training resumes from the last epoch's checkpoint; and by hand, for
 * each task, the ONNX graph gives the trainer's own scores, a resumed run writes the same bytes
 * as an uninterrupted one, and bad settings exit 2 naming what is wrong.
 */

jest.setTimeout(900_000);

const execFileP = promisify(execFile);
const bucket = `torch-${randomUUID().slice(0, 8)}`;
const workers = workerGroup();
const SEATTLE = path.join(PROJECT_ROOT, 'node_modules', 'vega-datasets', 'data', 'seattle-weather.csv');
const WEATHER = ['drizzle', 'fog', 'rain', 'snow', 'sun'];
let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let dir: string;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket)]);
  pg = await independentPg();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'torch-trainer-'));
}, 300_000);

afterAll(async () => {
  workers.killAll();
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function trainQueue(workflowId: string): Promise<string | undefined> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return history.events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'train')?.activityTaskScheduledEventAttributes?.taskQueue?.name ?? undefined;
}

test("the README's torch-mlp example trains a multiclass model on the GPU queue and passes the parity gate", async () => {
  const lines = readmeBlock('torch-mlp');
  expect(lines.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(['temporal workflow start', 'temporal workflow result']);
  const outputs = await withTestWorkers(env, runtime, async () => {
    const out: string[] = [];
    for (const line of lines) out.push(await runReadmeLine(line.replace(/\s+#.*$/, ''), env));
    return out;
  });
  const result = JSON.parse(outputs[1]!).closeEvent.workflowExecutionCompletedEventAttributes.result[0] as MulticlassTrainingResult;
  console.log(`torch-mlp on seattle-weather: log loss ${result.metrics.logLoss.toFixed(4)} (logreg ${result.baseline.logLoss.toFixed(4)}), macro-F1 ${result.metrics.macroF1.toFixed(4)}, accuracy ${result.metrics.accuracy.toFixed(4)}, parity ${result.parityMaxAbsDiff}`);
  expect(result).toMatchObject({ model: 'seattle-weather-mlp', status: 'registered', task: 'multiclass', classes: WEATHER });
  expect(result.parityMaxAbsDiff).toBeLessThanOrEqual(1e-4);
  expect(result.metrics.logLoss).toBeLessThanOrEqual(result.baseline.logLoss);
  expect(await trainQueue('train-seattle-weather-mlp')).toBe(TASK_QUEUES.gpu);
  const rows = await pg.query(`select mv.status, mv.metrics->'lineage'->>'trainer' as trainer from model_versions mv join models m on m.id = mv.model_id where m.name = 'seattle-weather-mlp'`);
  expect(rows.rows).toEqual([{ status: 'registered', trainer: 'command:torch-mlp' }]);
});

const startWorker = (): ChildProcess => startDevWorker(workers, env, bucket);

test('kill -9 of the GPU worker mid-training: torch-mlp resumes from its last epoch checkpoint, its parity check runs, one version is registered', async () => {
  const model = `torch-crash-${randomUUID().slice(0, 8)}`;
  const workflowId = `ct-${model}`;
  const first = startWorker();
  const handle = await env.client.workflow.start('continuousTraining', {
    taskQueue: TASK_QUEUES.control,
    workflowId,
    args: [
      {
        model,
        dataset: { bundled: 'seattle-weather' },
        features: [
          { name: 'precipitation', kind: 'numeric' },
          { name: 'temp_min', kind: 'numeric' },
          { name: 'wind', kind: 'numeric' },
          { name: 'weather', kind: 'categorical' },
          { name: 'month', kind: 'numeric', column: 'date', transform: 'month' },
        ],
        label: { column: 'temp_max', kind: 'regression' },
        split: { kind: 'time', column: 'date', testFraction: 0.2 },
        trainer: 'command',
        command: 'torch-mlp',
        hyperparameters: { epochs: 400, batchSize: 8, hidden: 16 },
        // An MLP on 1,168 rows need not beat ridge regression to show that it resumed.
        gates: { maxBaselineLoss: 1 },
        training: { heartbeatSeconds: 4 },
      },
    ],
  });
  const checkpointEpoch = await waitForCheckpoint(handle, 5, () => `worker: ${workers.log()}`);
  process.kill(-first.pid!, 'SIGKILL');
  await new Promise((r) => first.once('exit', r));

  startWorker();
  const result = (await handle.result()) as RegressionTrainingResult;
  expect(result).toMatchObject({ model, status: 'registered', task: 'regression' });
  expect(result.resumedFromRound).toBeGreaterThanOrEqual(checkpointEpoch);
  expect(result.resumedFromRound).toBeLessThan(400);
  expect(result.parityMaxAbsDiff).toBeDefined();
  const status = (await handle.query('status')) as PipelineStatus;
  const train = status.steps.find((s) => s.name === 'train')!;
  expect(train.attempts).toBe(2);
  expect((train.outputs as { rounds: number }).rounds).toBe(400);
  expect(await trainQueue(workflowId)).toBe(TASK_QUEUES.gpu);
  const versions = await pg.query(`select mv.version from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
  expect(versions.rows).toEqual([{ version: 1 }]);
});

// --- by hand, under the contract ----------------------------------------------------------------

type Task = 'binary' | 'multiclass' | 'regression';
const NUMERIC = ['precipitation', 'temp_min', 'wind', 'month'];
const FEATURES = [...NUMERIC.map((name) => ({ name, kind: 'numeric' })), { name: 'sky', kind: 'categorical' }];

/** Train and test CSVs of the weather table for each task, labels as the split files hold them (a class index for multiclass). */
async function splitFiles(task: Task): Promise<{ train: string; valid: string }> {
  const label = { binary: '(temp_max > 15)::INTEGER', regression: 'temp_max', multiclass: `list_position([${WEATHER.map(literal).join(', ')}], weather) - 1` }[task];
  // The multiclass model may not see the weather as a feature: it is the label there.
  const sky = task === 'multiclass' ? `CASE WHEN precipitation > 0 THEN 'wet' ELSE 'dry' END` : `CASE WHEN random() < 0.05 THEN NULL ELSE weather END`;
  const out = { train: path.join(dir, `${task}-train.csv`), valid: path.join(dir, `${task}-valid.csv`) };
  await withDuckDb(async (c) => {
    await c.run(`SELECT setseed(0.25)`);
    const rows = `SELECT precipitation, temp_min, wind, month(date)::DOUBLE AS month, ${sky} AS sky, ${label} AS label, date FROM read_csv(${literal(SEATTLE)})`;
    await c.run(`COPY (SELECT * EXCLUDE (date) FROM (${rows}) WHERE date < DATE '2015-03-01' ORDER BY date) TO ${literal(out.train)} (HEADER)`);
    // The test rows include a category the model never saw.
    await c.run(`COPY (SELECT * EXCLUDE (date) REPLACE (CASE WHEN day(date) = 1 THEN 'hail' ELSE sky END AS sky) FROM (${rows}) WHERE date >= DATE '2015-03-01' ORDER BY date) TO ${literal(out.valid)} (HEADER)`);
  });
  return out;
}

async function runTrainer(vars: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...args] = builtinCommandTrainers()['torch-mlp']!;
  try {
    const { stdout, stderr } = await execFileP(cmd!, args, { env: { PATH: process.env.PATH, HOME: os.homedir(), ...vars }, timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function trainerVars(task: Task, name: string, hyperparameters: Record<string, number>): Promise<Record<string, string>> {
  const files = await splitFiles(task);
  const out = path.join(dir, `${name}-out`);
  const checkpoints = path.join(dir, `${name}-checkpoints`);
  await fs.mkdir(out, { recursive: true });
  await fs.mkdir(checkpoints, { recursive: true });
  return {
    MLOPS_TRAIN_DATA: files.train,
    MLOPS_VALID_DATA: files.valid,
    MLOPS_LABEL: 'label',
    MLOPS_TASK: task,
    ...(task === 'multiclass' ? { MLOPS_CLASSES: JSON.stringify(WEATHER) } : {}),
    MLOPS_FEATURES: JSON.stringify(FEATURES),
    MLOPS_HYPERPARAMETERS: JSON.stringify(hyperparameters),
    MLOPS_SEED: '11',
    MLOPS_OUTPUT_DIR: out,
    MLOPS_CHECKPOINT_DIR: checkpoints,
    MLOPS_TEST_SCORES: path.join(out, 'scores.csv'),
  };
}

/** The test split's rows as the model server would feed them: float32 (NaN for an empty cell) and strings. */
async function feeds(csv: string): Promise<{ rows: number; feeds: Record<string, ort.Tensor> }> {
  const [head, ...lines] = (await fs.readFile(csv, 'utf8')).trim().split('\n');
  const cols = head!.split(',');
  const cells = lines.map((l) => l.split(','));
  const col = (name: string) => cells.map((r) => r[cols.indexOf(name)]!);
  const out: Record<string, ort.Tensor> = {};
  for (const name of NUMERIC) out[name] = new ort.Tensor('float32', Float32Array.from(col(name).map((v) => (v === '' ? NaN : Number(v)))), [lines.length, 1]);
  out.sky = new ort.Tensor('string', col('sky'), [lines.length, 1]);
  return { rows: lines.length, feeds: out };
}

const readScores = async (file: string) => (await fs.readFile(file, 'utf8')).trim().split('\n').slice(1).map((l) => l.split(',').map(Number));

test.each([
  ['binary', 'probability', 1],
  ['multiclass', 'probabilities', WEATHER.length],
  ['regression', 'prediction', 1],
] as const)('by hand, %s: the ONNX graph on raw rows gives the trainer\'s own scores', async (task, output, width) => {
  const vars = await trainerVars(task, `parity-${task}`, { epochs: 15 });
  const run = await runTrainer(vars);
  expect({ code: run.code, stderr: run.stderr.slice(-2000) }).toMatchObject({ code: 0 });
  const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; step?: number; metrics?: Record<string, number> });
  expect(events.filter((e) => e.event === 'checkpoint').map((e) => e.step)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  expect(events.at(-1)!.event).toBe('metrics');

  const session = await ort.InferenceSession.create(path.join(vars.MLOPS_OUTPUT_DIR!, 'model.onnx'));
  expect([...session.inputNames].sort()).toEqual([...NUMERIC, 'sky'].sort());
  expect([...session.outputNames]).toEqual(task === 'multiclass' ? ['probabilities', 'label'] : [output]);
  const { rows, feeds: input } = await feeds(vars.MLOPS_VALID_DATA!);
  const got = await session.run(input);
  expect(got[output]!.dims).toEqual([rows, width]);
  const mine = await readScores(vars.MLOPS_TEST_SCORES!);
  expect(mine).toHaveLength(rows);
  const graph = got[output]!.data as Float32Array;
  let worst = 0;
  mine.forEach((row, i) => row.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - graph[i * width + c]!) / Math.max(1, Math.abs(v))))));
  expect(worst).toBeLessThanOrEqual(1e-5);
  if (task === 'multiclass') {
    const labels = got.label!.data as string[];
    mine.forEach((row, i) => expect(labels[i]).toBe(WEATHER[row.indexOf(Math.max(...row))]));
  }
  await session.release();
});

test('by hand: a run resumed from an epoch checkpoint writes the same model bytes; a checkpoint it cannot use means training from the start', async () => {
  const full = await trainerVars('multiclass', 'resume-full', { epochs: 12 });
  expect((await runTrainer(full)).code).toBe(0);
  const model = await fs.readFile(path.join(full.MLOPS_OUTPUT_DIR!, 'model.onnx'));

  const resumed: Record<string, string> = { ...full, MLOPS_OUTPUT_DIR: path.join(dir, 'resume-out'), MLOPS_CHECKPOINT_DIR: path.join(dir, 'resume-checkpoints'), MLOPS_RESUME_CHECKPOINT: path.join(full.MLOPS_CHECKPOINT_DIR!, 'checkpoint-5.pt') };
  resumed.MLOPS_TEST_SCORES = path.join(resumed.MLOPS_OUTPUT_DIR!, 'scores.csv');
  await fs.mkdir(resumed.MLOPS_OUTPUT_DIR!, { recursive: true });
  await fs.mkdir(resumed.MLOPS_CHECKPOINT_DIR!, { recursive: true });
  const r = await runTrainer(resumed);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout.split('\n')[0]!)).toMatchObject({ event: 'progress', step: 5, total: 12 });
  expect(r.stdout.split('\n').filter((l) => l.includes('"checkpoint"'))).toHaveLength(7);
  expect((await fs.readFile(path.join(resumed.MLOPS_OUTPUT_DIR!, 'model.onnx'))).equals(model)).toBe(true);

  // Garbage, and a checkpoint of other hyperparameters: both reported, both start over — to the same model.
  const garbage = path.join(dir, 'garbage.pt');
  await fs.writeFile(garbage, 'not a checkpoint');
  const other = await trainerVars('multiclass', 'resume-other', { epochs: 12, hidden: 8 });
  expect((await runTrainer(other)).code).toBe(0);
  for (const [checkpoint, reason] of [
    [garbage, /checkpoint .*garbage\.pt unreadable .*; training from the start/],
    [path.join(other.MLOPS_CHECKPOINT_DIR!, 'checkpoint-3.pt'), /belongs to other data, features or hyperparameters; training from the start/],
  ] as const) {
    const again = await runTrainer({ ...resumed, MLOPS_RESUME_CHECKPOINT: checkpoint });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(reason);
    expect(JSON.parse(again.stdout.split('\n')[0]!)).toMatchObject({ event: 'progress', step: 0 });
    expect((await fs.readFile(path.join(resumed.MLOPS_OUTPUT_DIR!, 'model.onnx'))).equals(model)).toBe(true);
  }
});

test('by hand: bad settings and labels exit 2 naming the variable or the column, and write no model', async () => {
  const base = await trainerVars('multiclass', 'errors', { epochs: 1 });
  const { MLOPS_CLASSES: _classes, ...withoutClasses } = base;
  const regression = await trainerVars('regression', 'errors-regression', { epochs: 1 });
  const textLabel = path.join(dir, 'text-label.csv');
  await fs.writeFile(textLabel, (await fs.readFile(regression.MLOPS_TRAIN_DATA!, 'utf8')).replace(/,([0-9.\-]+)\n/, ',warm\n'));
  const cases: Array<[Record<string, string>, RegExp]> = [
    [withoutClasses, /error: MLOPS_CLASSES is not set/],
    [{ ...base, MLOPS_CLASSES: '["rain","sun"]' }, /label column 'label' must hold a class index 0 … 1 \(MLOPS_CLASSES order\); found '\d'/],
    [{ ...base, MLOPS_TASK: 'ranking' }, /MLOPS_TASK is 'ranking'; one of binary, multiclass, regression/],
    [{ ...base, MLOPS_HYPERPARAMETERS: '{"epochs": 2.5}' }, /hyperparameter epochs must be an integer >= 1, got 2.5/],
    [{ ...regression, MLOPS_TRAIN_DATA: textLabel }, /label column 'label' must hold a number; found 'warm'/],
  ];
  for (const [vars, message] of cases) {
    const r = await runTrainer(vars);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(message) });
    await expect(fs.access(path.join(vars.MLOPS_OUTPUT_DIR!, 'model.onnx'))).rejects.toThrow();
  }
});
