import http from 'node:http';
import type { NativeConnection } from '@temporalio/worker';
import { sql, type Kysely } from 'kysely';
import type { GpuPool } from '../activities/gpu-context';
import { STEP_METRICS } from '../activities/step-metrics';
import type { Database } from '../infra/db/schema';
import { listen } from '../infra/http';
import type { Logger } from '../infra/log';
import { METRICS_CONTENT_TYPE, MetricsRegistry } from '../infra/metrics';
import { WORKFLOW_METRICS } from './workflow-metrics';

/**
 * A worker's /metrics: the step attempts it ran (duration histograms by step and outcome), the
 * decisions its workflows made (retrains, promotions), the GPUs it leases, and — on a control
 * worker, read from the metadata store and the Temporal server at each scrape — the loops'
 * figures: pipeline runs by type and status, alias moves by kind, our task queues' backlog, and
 * per model and version the latest monitoring check (feature PSI and JS, prediction PSI, online
 * AUC, a regression's RMSE, a multiclass model's accuracy and macro-F1, rows, verdict), so drift
 * can be alerted on with no exporter of one's own.
 */

/** Our task queues whose backlog the control worker reports (DescribeTaskQueue with stats). */
export interface BacklogSource {
  connection: Pick<NativeConnection, 'workflowService' | 'withDeadline'>;
  namespace: string;
  queues: () => Array<{ name: string; types: Array<'workflow' | 'activity'> }>;
}

export interface WorkerMetricsOptions {
  db: Kysely<Database>;
  log: Logger;
  port: number;
  host: string;
  /** Read the loops' figures from the store (one control worker is enough; they are the same everywhere). */
  storeFigures: boolean | (() => boolean);
  gpus?: GpuPool | 'cpu' | (() => GpuPool | 'cpu' | undefined);
  /** The queues polled behind this endpoint; a function when workers join after it started. */
  queues: string[] | (() => string[]);
  backlog?: BacklogSource | (() => BacklogSource | undefined);
}

export interface RunningWorkerMetrics {
  url: string;
  registry: MetricsRegistry;
  close(): Promise<void>;
}

const live = <T>(v: T | (() => T)): (() => T) => (typeof v === 'function' ? (v as () => T) : () => v);

const LEVELS = ['ok', 'warn', 'act', 'insufficient-data', 'error'] as const;

export function workerMetrics(opts: Pick<WorkerMetricsOptions, 'db' | 'storeFigures' | 'gpus' | 'queues' | 'backlog'> & { log?: Logger }): MetricsRegistry {
  const r = new MetricsRegistry();
  const queues = live(opts.queues);
  const gpuPool = live(opts.gpus);
  const storeFigures = live(opts.storeFigures);
  const backlogSource = live(opts.backlog);
  const info = r.gauge('mlops_worker_queues', 'Task queues this worker polls (1 per queue).', ['queue']);
  const gpus = r.gauge('mlops_gpus', 'GPUs this worker hands out to GPU activities.');
  const leased = r.gauge('mlops_gpu_leases_in_use', 'GPUs leased by running GPU activities.');
  r.onCollect(() => {
    info.reset();
    for (const q of queues()) info.set({ queue: q }, 1);
    gpus.reset();
    leased.reset();
    const pool = gpuPool();
    if (pool && pool !== 'cpu') {
      gpus.set({}, pool.size);
      leased.set({}, pool.busy);
    }
  });
  const backlog = r.gauge('mlops_task_queue_backlog', 'Tasks waiting in our task queues for a worker (approximate, from the Temporal server), by queue and type (workflow, activity).', ['queue', 'type']);
  const backlogAge = r.gauge('mlops_task_queue_backlog_age_seconds', 'Age of the oldest task waiting in the queue (0 when none waits).', ['queue', 'type']);
  let backlogWarned = false;
  r.onCollect(async () => {
    backlog.reset();
    backlogAge.reset();
    const source = storeFigures() ? backlogSource() : undefined;
    if (!source) return;
    const jobs = source.queues().flatMap((q) => q.types.map((type) => ({ name: q.name, type })));
    await Promise.all(
      jobs.map(async ({ name, type }) => {
        try {
          const res = await source.connection.withDeadline(Date.now() + 2000, () =>
            source.connection.workflowService.describeTaskQueue({ namespace: source.namespace, taskQueue: { name, kind: 1 }, taskQueueType: type === 'workflow' ? 1 : 2, reportStats: true }),
          );
          const stats = res.stats;
          if (!stats) return;
          backlog.set({ queue: name, type }, Number(stats.approximateBacklogCount ?? 0));
          const age = stats.approximateBacklogAge;
          backlogAge.set({ queue: name, type }, age ? Number(age.seconds ?? 0) + (age.nanos ?? 0) / 1e9 : 0);
        } catch (err) {
          // A server that cannot say leaves the series absent (an alert sees "no data"), never 0.
          if (!backlogWarned) opts.log?.warn(`/metrics: task queue backlog of ${name} (${type}) unavailable: ${err instanceof Error ? err.message : String(err)}`);
          backlogWarned = true;
        }
      }),
    );
  });
  const runs = r.gauge('mlops_pipeline_runs', 'Pipeline runs recorded in the metadata store, by pipeline and status.', ['pipeline', 'status']);
  const oldestRunning = r.gauge('mlops_pipeline_oldest_running_seconds', 'Age of the oldest pipeline run still running, by pipeline (0 when none runs): a stuck run shows here.', ['pipeline']);
  const moves = r.counter('mlops_alias_moves_total', 'Alias moves in the registry (alias history), by model, alias and kind (promote, rollback, revert, candidate, …).', ['model', 'alias', 'kind']);
  const featurePsi = r.gauge('mlops_monitoring_feature_psi', 'PSI of a feature in the latest monitoring check, against the training baseline.', ['model', 'version', 'feature']);
  const featureJs = r.gauge('mlops_monitoring_feature_js_distance', 'Jensen–Shannon distance of a feature in the latest monitoring check.', ['model', 'version', 'feature']);
  const predictionPsi = r.gauge('mlops_monitoring_prediction_psi', "PSI of the served predictions against the model's scores on its test split, latest check.", ['model', 'version']);
  const onlineAuc = r.gauge('mlops_monitoring_online_auc', 'AUC on the labels that arrived, latest check (absent until labels arrive).', ['model', 'version']);
  const offlineAuc = r.gauge('mlops_monitoring_offline_auc', "The version's AUC on its test split, beside the online one.", ['model', 'version']);
  const onlineRmse = r.gauge('mlops_monitoring_online_rmse', "A regression's RMSE on the labels that arrived, latest check (absent until labels arrive).", ['model', 'version']);
  const offlineRmse = r.gauge('mlops_monitoring_offline_rmse', "A regression version's RMSE on its test split, beside the online one.", ['model', 'version']);
  const onlineAccuracy = r.gauge('mlops_monitoring_online_accuracy', "A multiclass model's accuracy on the labels that arrived, latest check (absent until labels arrive).", ['model', 'version']);
  const onlineMacroF1 = r.gauge('mlops_monitoring_online_macro_f1', "A multiclass model's macro-F1 on the labels that arrived, latest check (absent until labels arrive).", ['model', 'version']);
  const offlineAccuracy = r.gauge('mlops_monitoring_offline_accuracy', "A multiclass version's accuracy on its test split, beside the online one.", ['model', 'version']);
  const rowsJudged = r.gauge('mlops_monitoring_rows', 'Served rows the latest check judged.', ['model', 'version']);
  const labelled = r.gauge('mlops_monitoring_labeled_rows', 'Labelled rows the latest check judged.', ['model', 'version']);
  const verdict = r.gauge('mlops_monitoring_verdict', 'The latest check’s verdict: 1 for the level it reached (ok, warn, act, insufficient-data, error), 0 for the others.', ['model', 'version', 'level']);
  const checkedAt = r.gauge('mlops_monitoring_last_check_timestamp_seconds', 'End of the window of the latest check (Unix time).', ['model', 'version']);
  const db = opts.db;
  r.onCollect(async () => {
    for (const g of [runs, oldestRunning, featurePsi, featureJs, predictionPsi, onlineAuc, offlineAuc, onlineRmse, offlineRmse, onlineAccuracy, onlineMacroF1, offlineAccuracy, rowsJudged, labelled, verdict, checkedAt]) g.reset();
    moves.reset();
    if (!storeFigures()) return;
    const runRows = await db.selectFrom('pipeline_runs').select(['pipeline', 'status', sql<number>`count(*)::int`.as('n')]).groupBy(['pipeline', 'status']).execute();
    for (const x of runRows) runs.set({ pipeline: x.pipeline, status: x.status }, x.n);
    const ages = await db
      .selectFrom('pipeline_runs')
      .select(['pipeline', sql<number>`coalesce(extract(epoch from now() - min(started_at) filter (where status = 'running')), 0)::float8`.as('age')])
      .groupBy('pipeline')
      .execute();
    for (const x of ages) oldestRunning.set({ pipeline: x.pipeline }, x.age);
    const moveRows = await db
      .selectFrom('alias_history as h')
      .innerJoin('models as m', 'm.id', 'h.model_id')
      .select(['m.name', 'h.alias', 'h.kind', sql<number>`count(*)::int`.as('n')])
      .groupBy(['m.name', 'h.alias', 'h.kind'])
      .execute();
    for (const x of moveRows) moves.setTotal({ model: x.name, alias: x.alias, kind: x.kind }, x.n);
    // The newest report per model: what monitoring last concluded.
    const latest = await sql<{ name: string; version: number | null; window_end: Date; figures: Record<string, unknown> }>`
      select distinct on (r.model_id) m.name, v.version, r.window_end, r.figures
        from monitoring_reports r join models m on m.id = r.model_id left join model_versions v on v.id = r.model_version_id
       where r.kind = 'check'
       order by r.model_id, r.window_end desc, r.id desc`.execute(db);
    for (const row of latest.rows) {
      const f = row.figures as {
        version?: number;
        level?: string;
        rows?: number;
        labeledRows?: number;
        features?: Record<string, { psi?: number | null; js?: number | null }>;
        prediction?: { psi?: number | null };
        performance?: {
          task?: string;
          auc?: number | null;
          offlineAuc?: number | null;
          rmse?: number | null;
          offlineRmse?: number | null;
          accuracy?: number | null;
          macroF1?: number | null;
          offlineAccuracy?: number | null;
        };
      };
      const labels = { model: row.name, version: String(row.version ?? f.version ?? 0) };
      for (const [feature, x] of Object.entries(f.features ?? {})) {
        if (typeof x.psi === 'number') featurePsi.set({ ...labels, feature }, x.psi);
        if (typeof x.js === 'number') featureJs.set({ ...labels, feature }, x.js);
      }
      if (typeof f.prediction?.psi === 'number') predictionPsi.set(labels, f.prediction.psi);
      if (typeof f.performance?.auc === 'number') onlineAuc.set(labels, f.performance.auc);
      if (typeof f.performance?.offlineAuc === 'number') offlineAuc.set(labels, f.performance.offlineAuc);
      if (typeof f.performance?.rmse === 'number') onlineRmse.set(labels, f.performance.rmse);
      if (typeof f.performance?.offlineRmse === 'number') offlineRmse.set(labels, f.performance.offlineRmse);
      // A binary report has an accuracy too (at 0.5): these series are a multiclass model's only.
      if (f.performance?.task === 'multiclass') setMulticlass(labels, f.performance);
      rowsJudged.set(labels, typeof f.rows === 'number' ? f.rows : 0);
      labelled.set(labels, typeof f.labeledRows === 'number' ? f.labeledRows : 0);
      for (const level of LEVELS) verdict.set({ ...labels, level }, f.level === level ? 1 : 0);
      checkedAt.set(labels, row.window_end.getTime() / 1000);
    }
  });
  function setMulticlass(labels: { model: string; version: string }, p: { accuracy?: number | null; macroF1?: number | null; offlineAccuracy?: number | null }): void {
    if (typeof p.accuracy === 'number') onlineAccuracy.set(labels, p.accuracy);
    if (typeof p.macroF1 === 'number') onlineMacroF1.set(labels, p.macroF1);
    if (typeof p.offlineAccuracy === 'number') offlineAccuracy.set(labels, p.offlineAccuracy);
  }
  return r;
}

export async function startWorkerMetrics(opts: WorkerMetricsOptions): Promise<RunningWorkerMetrics> {
  const registry = workerMetrics(opts);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://worker').pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    Promise.all([registry.render(), STEP_METRICS.render(), WORKFLOW_METRICS.render()])
      .then((parts) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(parts.join('')))
      .catch((err: unknown) => {
        opts.log.warn(`/metrics: ${err instanceof Error ? err.message : String(err)}`);
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`);
      });
  });
  const url = await listen(server, opts.port, opts.host);
  opts.log.info(`metrics at ${url}/metrics`);
  return {
    url,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
