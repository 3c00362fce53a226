import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { withDuckDb, literal } from '../activities/data/duck';
import { flightsParquetPath } from '../activities/data/snapshot';
import { createWorkers, connectWorkerToTemporal, installSdkRuntime } from '../workers/start';
import { openRuntime } from '../workers/runtime';
import { startModelServer } from '../workers/serving/server';
import { lifecycleStatusQuery, type LifecycleStatus } from '../workflows/contracts/lifecycle';
import { DATASET_WATCHER, lifecycleWorkflowId, monitoringWorkflowId, promotionWorkflowId, watcherWorkflowId } from '../workflows/contracts/names';
import { monitoringStatusQuery, type MonitoringStatus } from '../workflows/monitoring';
import type { TrainingResult } from '../workflows/continuous-training';
import type { PipelineStatus } from '../workflows/pipeline';
import { TEMPORAL_CLI, resolveBinary } from './binaries';
import { loadConfig } from './config';
import { UserFacingError, runMain } from './errors';
import { createLogger } from './log';
import { PROJECT_ROOT } from './paths';
import { resolvePostgres } from './postgres';
import { startTemporalDevServer } from './services';
import { temporalSettings } from './temporal';

/**
 * `npm run record-histories [-- <folder>]`: runs every workflow type once on a stack of its own
 * (a Temporal dev server, the metadata store in a fresh schema, artifacts in a temp folder, our
 * workers and a model server) and writes each history to the folder (default
 * test/fixtures/histories) as `<type>-<date>.json` (`<type>-<date>-<hhmm>.json` when that day has
 * one: a recorded history is never overwritten), for the replay gate (`npm run replay`, part of
 * `npm test`). Record again after a workflow change has shipped, and keep the older files: they
 * are the runs still in flight on the old code.
 */

const SMALL_TRAINING = { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 20_000, hyperparameters: { rounds: 8, maxDepth: 4 }, resources: { gpu: 0 } } as const;

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new UserFacingError(`record-histories: gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

runMain(async () => {
  const out = path.resolve(process.argv[2] ?? path.join(PROJECT_ROOT, 'test', 'fixtures', 'histories'));
  const log = createLogger('record');
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mlops-record-'));
  const now = new Date().toISOString();
  const day = now.slice(0, 10);
  const hhmm = now.slice(11, 16).replace(':', '');
  Object.assign(process.env, {
    MLOPS_STATE_DIR: stateDir,
    ARTIFACT_ROOT: path.join(stateDir, 'artifacts'),
    MLOPS_DB_SCHEMA: `record_${randomBytes(4).toString('hex')}`,
    MLOPS_METRICS_PORT: 'off',
    MLOPS_DATA_ROOTS: stateDir,
  });
  // Fixtures in plain text: anyone's replay opens them, with or without payload keys.
  for (const name of ['TEMPORAL_ADDRESS', 'S3_ENDPOINT', 'MLOPS_CODEC_KEYS', 'MLOPS_CODEC_KEYS_FILE']) delete process.env[name];
  const config = loadConfig();
  const cli = await resolveBinary(TEMPORAL_CLI, config, log);
  const temporal = await startTemporalDevServer({ cli: cli.path, stateDir, dbFilename: path.join(stateDir, 'temporal.db'), preferStandardPorts: false });
  process.env.TEMPORAL_ADDRESS = temporal.address;
  const pg = await resolvePostgres(config, log);
  const settings = temporalSettings();
  installSdkRuntime();
  const connection = await connectWorkerToTemporal(log, settings);
  const runtime = await openRuntime(log, { config, pg });
  const adminToken = randomBytes(18).toString('base64url');
  const server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('serve'), port: 0, adminToken });
  runtime.config.modelServer = { url: server.url, adminToken };
  const workers = await createWorkers({ selection: { control: true, cpu: true, gpu: true }, runtime, connection, namespace: settings.namespace, allowCpu: true, log });
  const running = workers.run();
  const clientConnection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection: clientConnection, namespace: settings.namespace });
  const control = runtime.config.taskQueues.control;
  const written: string[] = [];
  const record = async (name: string, workflowId: string) => {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    mkdirSync(out, { recursive: true });
    const dated = path.join(out, `${name}-${day}.json`);
    const file = existsSync(dated) ? path.join(out, `${name}-${day}-${hhmm}.json`) : dated;
    // `{workflowId, history}`: the workflows that check their own id replay under it.
    writeFileSync(file, `{"workflowId": ${JSON.stringify(workflowId)}, "history": ${historyToJSON(history)}}\n`);
    written.push(file);
    log.info(`recorded ${workflowId} → ${path.relative(PROJECT_ROOT, file)} (${history.events?.length ?? 0} events)`);
  };
  try {
    const model = 'recorded';
    await client.workflow.execute('platformCheck', { taskQueue: control, workflowId: 'record-platform-check', args: [{}] });
    await record('platform-check', 'record-platform-check');
    await client.workflow.execute('noopPipeline', { taskQueue: control, workflowId: 'record-noop', args: [{ steps: 3 }] });
    await record('noop-pipeline', 'record-noop');

    const v1 = (await client.workflow.execute('continuousTraining', { taskQueue: control, workflowId: 'record-train-1', args: [{ model, ...SMALL_TRAINING }] })) as TrainingResult;
    await record('continuous-training', 'record-train-1');
    const promote = { strategy: 'direct', loadTest: { seconds: 0.5, concurrency: 2 }, gates: { maxP99Ms: 2000 } };
    await client.workflow.execute('promotion', { taskQueue: control, workflowId: promotionWorkflowId(model), args: [{ model, version: v1.version, ...promote }] });
    await record('promotion', promotionWorkflowId(model));
    const v2 = (await client.workflow.execute('continuousTraining', { taskQueue: control, workflowId: 'record-train-2', args: [{ model, ...SMALL_TRAINING, hyperparameters: { rounds: 10, maxDepth: 4 } }] })) as TrainingResult;
    await client.workflow.execute('promotion', { taskQueue: control, workflowId: promotionWorkflowId(model), args: [{ model, version: v2.version, ...promote }] });
    await client.workflow.execute('promotion', { taskQueue: control, workflowId: promotionWorkflowId(model), args: [{ model, rollback: true, reason: 'recorded rollback' }] });
    await record('promotion-rollback', promotionWorkflowId(model));

    // A run that pauses on a label of text and is resumed with another label: the resume path
    // that may change the task.
    const paused = await client.workflow.start('continuousTraining', { taskQueue: control, workflowId: 'record-train-resumed', args: [{ model: `${model}-fix`, ...SMALL_TRAINING, label: { column: 'origin' } }] });
    await until('the run to pause on its label', async () => ((await paused.query<PipelineStatus>('status')).state === 'awaiting-resume' ? true : undefined));
    await paused.signal('resume', { label: { column: 'delay', greaterThan: 15 } });
    await paused.result();
    await record('continuous-training-resumed', 'record-train-resumed');

    // A schedule's firing starts the lifecycle, which trains, promotes and starts monitoring;
    // a watcher on a folder hands it new data.
    const looped = 'recorded-loop';
    const policy = { cooldownSeconds: 3600, retrainOnNewData: false, training: SMALL_TRAINING, promotion: promote, monitoring: { enabled: true, periodSeconds: 2, thresholds: { minRows: 1 } } };
    await client.workflow.execute('scheduledRetrain', { taskQueue: control, workflowId: `record-scheduled-${day}`, args: [{ model: looped, reason: 'recorded schedule firing', policy }] });
    await record('scheduled-retrain', `record-scheduled-${day}`);
    const lifecycle = client.workflow.getHandle(lifecycleWorkflowId(looped));
    await until('the lifecycle’s training and promotion', async () => {
      const s: LifecycleStatus = await lifecycle.query(lifecycleStatusQuery);
      return s.counters.promotions >= 1 && s.phase !== 'training' && s.phase !== 'promoting' ? s : undefined;
    });
    const incoming = path.join(stateDir, 'incoming');
    mkdirSync(incoming, { recursive: true });
    await client.workflow.start(DATASET_WATCHER, { taskQueue: control, workflowId: watcherWorkflowId(looped), args: [{ model: looped, prefix: pathToFileURL(incoming).href + '/', periodSeconds: 1 }] });
    await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month("date") = 2 LIMIT 2000) TO ${literal(path.join(incoming, '2001-02.parquet'))} (FORMAT parquet)`));
    await until('the watcher’s newData at the lifecycle', async () => ((await lifecycle.query(lifecycleStatusQuery)).dataUris.length ? true : undefined));
    await until('a monitoring check', async () => {
      const s: MonitoringStatus = await client.workflow.getHandle(monitoringWorkflowId(looped)).query(monitoringStatusQuery);
      return s.latest ? s : undefined;
    });
    await record('lifecycle', lifecycleWorkflowId(looped));
    await record('monitoring', monitoringWorkflowId(looped));
    await record('dataset-watcher', watcherWorkflowId(looped));
    for (const id of [watcherWorkflowId(looped), monitoringWorkflowId(looped), lifecycleWorkflowId(looped)]) await client.workflow.getHandle(id).terminate('recorded').catch(() => undefined);
    process.stdout.write(`${written.length} histories written to ${out}\n`);
  } finally {
    workers.shutdown();
    await running.catch(() => undefined);
    await clientConnection.close().catch(() => undefined);
    await server.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
    await runtime.close().catch(() => undefined);
    await pg.close().catch(() => undefined);
    await temporal.process.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
