import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import type { RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES, lifecycleWorkflowId, monitoringWorkflowId, watcherWorkflowId } from '../../workflows/contracts/names';
import { lifecycleStatusQuery, type LifecyclePolicyInput, type LifecycleStatus } from '../../workflows/contracts/lifecycle';
import { monitoringStatusQuery, type MonitoringStatus } from '../../workflows/monitoring';
import { serveForTest } from '../helpers/serving';
import { waitFor } from '../helpers/wait';
import { createTemporalEnv, independentPg, openTestRuntime, testServices } from '../helpers/real';
import { scanHistory } from '../helpers/history-scan';
import { withTestWorkers, workflowBundle } from '../helpers/workers';
import { epochSeconds } from '../../activities/ml/model-inputs';

/**
 * The closed loop on real services (Temporal, PostgreSQL, MinIO, the model server over
 * loopback, real flights rows, sampled): after one start — the lifecycle with a first retrain,
 * and a watcher on a data folder — nothing is typed. The application's traffic drifts, new data
 * lands in the folder, monitoring sees the drift, the lifecycle retrains on the new data and
 * promotes the new version through canary.
 */

jest.setTimeout(600_000);

const TOKEN = 'closed-loop-token-0123456';
const model = `loop-${randomUUID().slice(0, 6)}`;
let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let server: RunningModelServer;
let dir: string;

/** A row as the served model takes it: the flight's time as epoch seconds (the model derives hour and day of week). */
interface Row {
  date: number;
  distance: number;
  origin: string;
  destination: string;
}

async function flightRows(month: number, n: number): Promise<Row[]> {
  return withDuckDb(async (c) => {
    const r = await c.runAndReadAll(
      `SELECT floor(epoch("date"))::BIGINT, distance::DOUBLE, origin::VARCHAR, destination::VARCHAR
       FROM read_parquet(${literal(flightsParquetPath())}, file_row_number = true) WHERE month("date") = ${month} ORDER BY hash(file_row_number + 7) LIMIT ${n}`,
    );
    return r.getRows().map(([date, distance, origin, destination]) => ({ date: Number(date), distance: Number(distance), origin: String(origin), destination: String(destination) }));
  });
}

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`loop-${randomUUID().slice(0, 8)}`)]);
  pg = await independentPg();
  await workflowBundle();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'closed-loop-'));
  fs.mkdirSync(path.join(dir, 'incoming'));
  server = await serveForTest(runtime, TOKEN);
}, 300_000);

afterAll(async () => {
  await server?.close();
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The application: sends batches of rows to the model, through whatever version serves. */
function application(rows: Row[]) {
  let drift = false;
  let stop = false;
  const failures: string[] = [];
  let sent = 0;
  const loop = (async () => {
    for (let i = 0; !stop; i = (i + 16) % (rows.length - 16)) {
      const batch = rows.slice(i, i + 16).map((r) => (drift ? { ...r, distance: r.distance * 3 + 500 } : r));
      const body = {
        inputs: [
          { name: 'date', datatype: 'INT64', shape: [batch.length, 1], data: batch.map((r) => r.date) },
          { name: 'distance', datatype: 'FP32', shape: [batch.length, 1], data: batch.map((r) => r.distance) },
          { name: 'origin', datatype: 'BYTES', shape: [batch.length, 1], data: batch.map((r) => r.origin) },
          { name: 'destination', datatype: 'BYTES', shape: [batch.length, 1], data: batch.map((r) => r.destination) },
        ],
      };
      const res = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', body: JSON.stringify(body) });
      // 404 until the first version is served.
      if (res.status === 200) sent += batch.length;
      else if (res.status !== 404) failures.push(`${res.status} ${await res.text()}`);
      else await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  return {
    failures,
    sent: () => sent,
    injectDrift: () => void (drift = true),
    stop: async () => {
      stop = true;
      await loop;
    },
  };
}


async function production(): Promise<number | undefined> {
  const r = await pg.query(`select mv.version from model_aliases a join models m on m.id = a.model_id join model_versions mv on mv.id = a.model_version_id where m.name = $1 and a.alias = 'production'`, [model]);
  return r.rows[0]?.version as number | undefined;
}

test('drift in served traffic → monitoring breach → retrain on the newest data → canary → new version in production, untouched', async () => {
  const policy: LifecyclePolicyInput = {
    cooldownSeconds: 0,
    retrainOnNewData: false,
    dataWindow: 1,
    training: {
      preset: 'flights-delay',
      dataset: { flights: { from: '2001-01', to: '2001-01' } },
      sampleRows: 20_000,
      hyperparameters: { rounds: 15, maxDepth: 4 },
      resources: { gpu: 0 },
      onFailure: 'fail',
    },
    promotion: { strategy: 'canary', canarySteps: [50], bakeSeconds: 2, loadTest: { seconds: 1, concurrency: 2 }, gates: { maxP99Ms: 1000, minCanaryRows: 5, maxPredictionPsi: 10 } },
    monitoring: { enabled: true, periodSeconds: 3, thresholds: { minRows: 200, minLabeledRows: 1_000_000 } },
  };
  const rows = await flightRows(2, 4000);
  const app = application(rows);
  const incoming = pathToFileURL(path.join(dir, 'incoming')).href + '/';
  try {
    await withTestWorkers(env, runtime, async () => {
      const client = env.client;
      // The one start: the model's lifecycle with its first retrain, and a watcher on the data folder.
      const lifecycle = await client.workflow.signalWithStart('modelLifecycle', {
        taskQueue: TASK_QUEUES.control,
        workflowId: lifecycleWorkflowId(model),
        args: [{ model, policy }],
        signal: 'retrain',
        signalArgs: [{ reason: 'initial model', source: 'api' }],
      });
      await client.workflow.start('datasetWatcher', { taskQueue: TASK_QUEUES.control, workflowId: watcherWorkflowId(model), args: [{ model, prefix: incoming, periodSeconds: 1 }] });

      await waitFor('v1 in production', async () => ((await production()) === 1 ? true : undefined), 300_000);
      const monitoring = client.workflow.getHandle(monitoringWorkflowId(model));
      // Traffic as in training: a verdict, and no breach.
      const calm: MonitoringStatus = await waitFor(
        'a verdict on undrifted traffic',
        async () => {
          const s = await monitoring.query(monitoringStatusQuery);
          return s.latest && s.latest.version === 1 && s.latest.level !== 'insufficient-data' ? s : undefined;
        },
        120_000,
      );
      expect(calm.latest!.breach).toBe(false);

      // The world changes: traffic drifts, and the new month's data (drifted alike) lands in the folder.
      app.injectDrift();
      await withDuckDb((c) =>
        c.run(
          `COPY (SELECT "date", delay, distance * 3 + 500 AS distance, origin, destination FROM read_parquet(${literal(flightsParquetPath())}) WHERE month("date") = 2 LIMIT 20000) TO ${literal(path.join(dir, 'incoming', '2001-02.parquet'))} (FORMAT parquet)`,
        ),
      );

      const promoted: LifecycleStatus = await waitFor(
        'a retrain from monitoring, promoted',
        async () => {
          const s = await lifecycle.query(lifecycleStatusQuery);
          return s.production !== null && s.production > 1 && !s.running ? s : undefined;
        },
        400_000,
      );
      const kinds = promoted.decisions.map((d) => `${d.kind}:${d.source ?? ''}`);
      const started = promoted.decisions.filter((d) => d.kind === 'training-started');
      expect(started).toHaveLength(2);
      expect(started[1]!.source).toBe('monitoring');
      expect(started[1]!.detail).toMatch(/1 data object/);
      expect(started[1]!.figures).toMatchObject({ version: 1, maxPsiFeature: 'distance' });
      expect(kinds).toContain('new-data:new-data');
      expect(promoted.decisions.filter((d) => d.kind === 'promotion-finished').map((d) => d.detail)).toEqual([expect.stringMatching(/^v1 promoted/), expect.stringMatching(/^v2 promoted/)]);

      // The registry and the server agree: v2 is production, trained on the file the watcher found.
      expect(await production()).toBe(2);
      const lineage = await pg.query(
        `select pr.spec from model_versions mv join models m on m.id = mv.model_id join pipeline_runs pr on pr.id = mv.training_run_id where m.name = $1 and mv.version = 2`,
        [model],
      );
      expect(lineage.rows[0].spec.dataset).toEqual({ uris: [`${incoming}2001-02.parquet`] });
      const breach = await pg.query(`select count(*)::int as n from monitoring_reports r join models m on m.id = r.model_id where m.name = $1 and r.breach`, [model]);
      expect(breach.rows[0].n).toBeGreaterThanOrEqual(1);
      const res = await fetch(`${server.url}/v2/models/${model}`);
      expect(await res.json()).toMatchObject({ name: model });
      const infer = await fetch(`${server.url}/v2/models/${model}/infer`, {
        method: 'POST',
        body: JSON.stringify({
          inputs: [
            { name: 'date', datatype: 'INT64', shape: [1, 1], data: [epochSeconds('2001-01-05T18:00:00Z')] },
            { name: 'distance', datatype: 'FP32', shape: [1, 1], data: [3500] },
            { name: 'origin', datatype: 'BYTES', shape: [1, 1], data: ['ORD'] },
            { name: 'destination', datatype: 'BYTES', shape: [1, 1], data: ['LGA'] },
          ],
        }),
      });
      expect(((await infer.json()) as { model_version: string }).model_version).toBe('2');
      expect(app.failures).toEqual([]);
      expect(app.sent()).toBeGreaterThan(500);

      // Every history of the loop (lifecycle, trainings, promotion, monitoring, watcher) carries
      // references only: no secret of this stack and no dataset rows.
      const secrets = [TOKEN, testServices.s3SecretKey(), new URL(testServices.databaseUrl()).password].filter(Boolean);
      let scanned = 0;
      for await (const wf of client.workflow.list()) {
        const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        expect({ workflow: wf.workflowId, findings: scanHistory(history, wf.workflowId, secrets) }).toEqual({ workflow: wf.workflowId, findings: [] });
        scanned++;
      }
      expect(scanned).toBeGreaterThanOrEqual(5);

      // `MLOPS_RECORD_HISTORIES=test/fixtures/histories` stores these runs for the replay test.
      const record = process.env.MLOPS_RECORD_HISTORIES;
      for (const [name, id] of [['lifecycle', lifecycleWorkflowId(model)], ['monitoring', monitoringWorkflowId(model)], ['dataset-watcher', watcherWorkflowId(model)]] as const) {
        const handle = client.workflow.getHandle(id);
        if (record) fs.writeFileSync(path.join(record, `${name}-${new Date().toISOString().slice(0, 10)}.json`), `{"workflowId": ${JSON.stringify(id)}, "history": ${historyToJSON(await handle.fetchHistory())}}`);
        await handle.terminate();
      }
    });
  } finally {
    await app.stop();
  }
});
