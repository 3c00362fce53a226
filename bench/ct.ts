import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { literal, withDuckDb } from '../activities/data/duck';
import { loadTable, prepareData } from '../activities/data/prepare';
import { flightsParquetPath } from '../activities/data/snapshot';
import { computeStatistics, inferSchema, validateSpan } from '../activities/data/validate';
import type { StepCall } from '../activities/steps';
import { predictGbdt, trainGbdt, type GbdtParams } from '../activities/ml/gbdt';
import { auc, quantile } from '../activities/ml/metrics';
import { xgboostReference } from '../test/reference/xgboost';
import { LocalArtifactStore } from '../infra/artifacts';
import { TEMPORAL_CLI, resolveBinary } from '../infra/binaries';
import { loadConfig } from '../infra/config';
import { createLogger } from '../infra/log';
import { printTable, writeResult } from './report';
import { startTemporalDevServer } from '../infra/services';
import { installSdkRuntime } from '../workers/start';
import { openRuntime } from '../workers/runtime';
import { TASK_QUEUES } from '../workflows/contracts/names';
import { PRESETS } from '../workflows/contracts/training-spec';

/**
 * `npm run bench -- ct`: the continuous-training figures the README quotes, each a ratio
 * against a baseline measured in the same run on the same machine.
 */

const median = (xs: number[]) => quantile(xs, 0.5);
const ms = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

async function stepEngine(log: ReturnType<typeof createLogger>, stateDir: string) {
  const config = loadConfig({ ...process.env, MLOPS_STATE_DIR: stateDir, ARTIFACT_ROOT: path.join(stateDir, 'artifacts'), MLOPS_DATABASE_NAME: 'mlops_bench' });
  const cli = await resolveBinary(TEMPORAL_CLI, config, log);
  const server = await startTemporalDevServer({ cli: cli.path, stateDir: path.join(stateDir, 'temporal') });
  const runtime = await openRuntime(log, { config });
  installSdkRuntime();
  const connection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const control = { broken: false, failAt: -1, restartedAt: 0 };
  const acts = createActivities({ db: runtime.db, artifacts: runtime.artifacts, config, codeVersion: runtime.codeVersion, worker: { identity: 'bench', queue: TASK_QUEUES.control } });
  const noopStep = acts.noopStep;
  const worker = await Worker.create({
    connection,
    taskQueue: TASK_QUEUES.control,
    workflowsPath: require.resolve('../workflows'),
    activities: {
      ...acts,
      noopStep: async (call: StepCall<{ i: number }>) => {
        if (call.inputs.i === control.failAt) {
          if (control.broken) throw ApplicationFailure.nonRetryable('injected failure', 'Bench');
          control.restartedAt = performance.now();
        }
        return noopStep(call);
      },
    },
  });
  const running = worker.run();
  try {
    const steps = 20;
    const run = (raw: boolean) => client.workflow.execute('noopPipeline', { taskQueue: TASK_QUEUES.control, workflowId: `bench-${randomUUID()}`, args: [{ steps, raw }] });
    await run(true);
    await run(false);
    const rawMs: number[] = [];
    const pipeMs: number[] = [];
    for (let i = 0; i < 7; i++) {
      rawMs.push((await ms(() => run(true))) / steps);
      pipeMs.push((await ms(() => run(false))) / steps);
    }
    const resumeMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      control.broken = true;
      control.failAt = 1;
      const handle = await client.workflow.start('noopPipeline', { taskQueue: TASK_QUEUES.control, workflowId: `bench-resume-${randomUUID()}`, args: [{ steps: 3 }] });
      for (;;) {
        const s = (await handle.query('status')) as { state: string };
        if (s.state === 'awaiting-resume') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      control.broken = false;
      const t0 = performance.now();
      await handle.signal('resume');
      await handle.result();
      resumeMs.push(control.restartedAt - t0);
    }
    return { rawActivityMs: median(rawMs), pipelineStepMs: median(pipeMs), stepOverheadRatio: median(pipeMs) / median(rawMs), resumeToStepMs: median(resumeMs) };
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
    await runtime.close();
    await server.process.stop();
  }
}

async function validation() {
  const file = literal(flightsParquetPath());
  const task = PRESETS['flights-delay'];
  const source = `read_parquet(${file})`;
  const first = await withDuckDb((c) => computeStatistics(c, source, { label: task.label }));
  const schema = inferSchema(first);
  const ours: number[] = [];
  const summarize: number[] = [];
  for (let i = 0; i < 3; i++) {
    summarize.push(await ms(() => withDuckDb((c) => c.runAndReadAll(`SUMMARIZE SELECT * FROM ${source}`))));
    ours.push(
      await ms(async () => {
        const stats = await withDuckDb((c) => computeStatistics(c, source, { label: task.label, previous: first }));
        validateSpan({ stats, schema, previous: first, features: task.features, label: task.label, splitColumn: 'date' });
      }),
    );
  }
  return { rows: first.rows, validationMs: median(ours), summarizeMs: median(summarize), validationRatio: median(ours) / median(summarize) };
}

async function gbdtVsXgboost(dir: string) {
  const store = new LocalArtifactStore(path.join(dir, 'store'));
  await store.ensureReady();
  const task = PRESETS['flights-delay'];
  const january = path.join(dir, 'january.parquet');
  await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 1) TO ${literal(january)} (FORMAT parquet)`));
  const prepared = await prepareData(store, january, { snapshot: { uri: '', sha256: '' }, features: task.features, label: task.label, split: task.split, seed: 42 }, dir);
  const [train, test] = await withDuckDb(async (c) => [
    await loadTable(path.join(dir, 'train.parquet'), prepared.features, c),
    await loadTable(path.join(dir, 'test.parquet'), prepared.features, c),
  ]);
  const params: Partial<GbdtParams> = { rounds: 100, maxDepth: 6, learningRate: 0.1, maxBins: 255, lambda: 1, minChildWeight: 1 };
  let model: ReturnType<typeof trainGbdt> | undefined;
  const gbdtSeconds = (await ms(async () => (model = trainGbdt(train, params)))) / 1000;
  const gbdtAuc = auc(predictGbdt(model!, test), test.label);
  const xgb = xgboostReference(train, test, model!.encodings, params, 2);
  return { trainRows: train.rows, testRows: test.rows, params, gbdtSeconds, xgboostSeconds: xgb.trainSeconds, gbdtRatio: gbdtSeconds / xgb.trainSeconds, gbdtAuc, xgboostAuc: xgb.auc, xgboostVersion: xgb.xgboostVersion };
}

export async function benchContinuousTraining(): Promise<void> {
  const log = createLogger('bench');
  process.env.MLOPS_LOG_LEVEL ??= 'WARN';
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-bench-ct-'));
  try {
    log.info('step engine: 20-step no-op pipeline vs 20 raw activities; resume latency');
    const engine = await stepEngine(log, path.join(dir, 'state'));
    log.info('validation: 3M flights rows vs DuckDB SUMMARIZE');
    const valid = await validation();
    log.info('GBDT vs xgboost hist (2 threads) on flights January');
    const gbdt = await gbdtVsXgboost(dir);
    const result = {
      machine: { cpus: os.availableParallelism(), node: process.version, date: new Date().toISOString() },
      stepOverheadRatio: engine.stepOverheadRatio,
      validationRatio: valid.validationRatio,
      gbdtRatio: gbdt.gbdtRatio,
      gbdtAuc: gbdt.gbdtAuc,
      xgboostAuc: gbdt.xgboostAuc,
      resumeToStepMs: engine.resumeToStepMs,
      figures: { engine, validation: valid, gbdt },
    };
    const rows: Array<[string, string, string, string]> = [
      ['step overhead (20-step no-op pipeline ÷ raw activity)', `${engine.pipelineStepMs.toFixed(2)} ms ÷ ${engine.rawActivityMs.toFixed(2)} ms`, result.stepOverheadRatio.toFixed(2), '≤ 1.2'],
      ['validation of 3M rows ÷ DuckDB SUMMARIZE', `${valid.validationMs.toFixed(0)} ms ÷ ${valid.summarizeMs.toFixed(0)} ms`, result.validationRatio.toFixed(2), '≤ 1.2'],
      [`GBDT ÷ xgboost hist, 2 threads (${gbdt.trainRows} rows)`, `${gbdt.gbdtSeconds.toFixed(2)} s ÷ ${gbdt.xgboostSeconds.toFixed(2)} s`, result.gbdtRatio.toFixed(2), '≤ 2.0'],
      ['test AUC: GBDT / xgboost', `${gbdt.gbdtAuc.toFixed(4)} / ${gbdt.xgboostAuc.toFixed(4)}`, (gbdt.gbdtAuc - gbdt.xgboostAuc).toFixed(4), '|Δ| ≤ 0.01'],
      ['resume signal → failed step restarted', `${engine.resumeToStepMs.toFixed(1)} ms`, '', ''],
    ];
    printTable(rows);
    await writeResult('ct', result);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
