import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { createDeploymentActivities } from '../../activities/deployment';
import { literal, withDuckDb } from '../../activities/data/duck';
import { loadTable, prepareData, type PreparedData } from '../../activities/data/prepare';
import { flightsParquetPath } from '../../activities/data/snapshot';
import type { Table } from '../../activities/ml/dataset';
import { exportGbdtOnnx, trainGbdt } from '../../activities/ml/gbdt';
import { signatureOf } from '../../activities/training/scoring';
import { loadConfig } from '../../infra/config';
import { changeServingState, getModelByName, getModelVersion, recordArtifact, registerModelVersion, upsertModel } from '../../infra/db/repositories';
import { compiledEntry } from '../../infra/entry';
import { createLogger } from '../../infra/log';
import { freePort } from '../../infra/processes';
import { startModelServer, type RunningModelServer } from '../../workers/serving/server';
import { openRuntime, type WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { PRESETS } from '../../workflows/contracts/training-spec';
import { promotionWorkflowId, type PromotionInput, type PromotionStatus } from '../../workflows/promotion';
import { createTemporalEnv, independentPg, testEnv } from '../helpers/real';
import { workerGroup } from '../helpers/run-entry';
import { waitFor } from '../helpers/wait';
import { withTestWorkers, workflowBundle } from '../helpers/workers';
import { constantRow } from '../helpers/serving';
import { withTimeInputs } from '../../activities/ml/time-graph';

/**
 * Traffic in PostgreSQL: model servers follow `serving_traffic` / `serving_versions`, register
 * and heartbeat in `model_servers`, and count failed requests in `serving_errors`; the deployment
 * activities write the state and wait for every live server to apply it. This suite has a schema
 * of its own, so the servers of other suites are not replicas of its servers.
 */

const TOKEN = 'serving-state-token-0123456';
const SCHEMA = `serving_${randomBytes(4).toString('hex')}`;
const bucket = `serving-${randomUUID().slice(0, 8)}`;
const log = createLogger('test-serve');
let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let data: PreparedData;
let train: Table;
let dir: string;
const servers: RunningModelServer[] = [];
const children = workerGroup();
const onnxBytes = new Map<string, Buffer>();

async function register(model: string, rounds: number, labels: 'real' | 'inverted' = 'real'): Promise<number> {
  const t = labels === 'real' ? train : { ...train, label: train.label.map((y) => 1 - y) };
  const bytes = withTimeInputs(exportGbdtOnnx(trainGbdt(t, { rounds, maxDepth: 3 })), data.features);
  const put = await runtime.artifacts.putContent(bytes, { mediaType: 'application/onnx' });
  onnxBytes.set(put.sha256, bytes);
  const artifact = await recordArtifact(runtime.db, { uri: put.uri, sha256: put.sha256, bytes: put.bytes, media_type: 'application/onnx', producing_step_run_id: null });
  const m = await upsertModel(runtime.db, model);
  const sig = signatureOf(data.features);
  const mv = await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: `test/${put.sha256}`, status: 'registered', metrics: { lineage: { test: data.test } }, onnxArtifactId: artifact.id, inputSignature: sig.inputs, outputSignature: sig.outputs });
  return mv.version;
}

async function ids(model: string, version: number) {
  const m = (await getModelByName(runtime.db, model))!;
  const mv = (await getModelVersion(runtime.db, m.id, version))!;
  return { modelId: m.id, versionId: mv.id, artifactId: mv.onnx_artifact_id! };
}

const start = (extra: { predictionLog?: { intervalMs?: number } } = {}) =>
  startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log, adminToken: TOKEN, predictionLog: { intervalMs: 50, ...extra.predictionLog }, serving: { pollMs: 100, heartbeatMs: 200 } }).then((s) => (servers.push(s), s));

const row = () => constantRow(data.features, { number: 10, text: 'ORD' });

async function infer(url: string, model: string, opts: { version?: number; requestId?: string } = {}) {
  const res = await fetch(`${url}/v2/models/${model}${opts.version !== undefined ? `/versions/${opts.version}` : ''}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.requestId ? { 'x-request-id': opts.requestId } : {}) },
    body: JSON.stringify(row()),
  });
  const body = (await res.json()) as { model_version?: string; error?: string };
  return { status: res.status, version: body.model_version, error: body.error };
}

interface AdminModel {
  name: string;
  traffic: { stable?: number; canary?: number; canaryWeight: number; shadow?: number };
  generation: number;
  versions: Array<{ version: number }>;
}

async function reported(url: string, model: string): Promise<AdminModel | undefined> {
  const res = await fetch(`${url}/admin/models`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (!res.ok) return undefined;
  return ((await res.json()) as AdminModel[]).find((m) => m.name === model);
}

async function generationOf(modelId: string): Promise<number> {
  const r = await pg.query(`select generation from serving_traffic where model_id = $1`, [modelId]);
  return Number(r.rows[0].generation);
}

/** The model server entry (`npm run serve`) in a process group of its own, on the suite's schema. */
function serveProcess(port: number, extra: NodeJS.ProcessEnv = {}): ChildProcess {
  return children.start([compiledEntry('workers/model-server.ts')], {
    ...process.env,
    ...testEnv(bucket),
    MLOPS_DB_SCHEMA: SCHEMA,
    MLOPS_SERVE_PORT: String(port),
    MLOPS_ADMIN_TOKEN: TOKEN,
    MLOPS_SERVE_POLL_MS: '100',
    MLOPS_SERVE_HEARTBEAT_MS: '200',
    MLOPS_SERVE_PREDICTION_LOG_INTERVAL_MS: '50',
    MLOPS_LOG_LEVEL: 'WARN',
    ...extra,
  });
}

const deployment = (url: string) => createDeploymentActivities({ db: runtime.db, artifacts: runtime.artifacts, config: { modelServer: { url, adminToken: TOKEN } }, servingWaitMs: 30_000 });

beforeAll(async () => {
  const config = loadConfig({ ...testEnv(bucket), MLOPS_DB_SCHEMA: SCHEMA });
  [env, runtime] = await Promise.all([createTemporalEnv(), openRuntime(createLogger('test'), { config, pg: { url: config.databaseUrl!, source: 'DATABASE_URL', maxConnections: 8, close: async () => undefined } })]);
  pg = await independentPg(SCHEMA);
  await workflowBundle();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'serving-'));
  const src = path.join(dir, 'mar.parquet');
  await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 3 LIMIT 8000) TO ${literal(src)} (FORMAT parquet)`));
  const task = PRESETS['flights-delay'];
  data = await prepareData(runtime.artifacts, src, { snapshot: { uri: '', sha256: '' }, features: task.features, label: task.label, split: task.split, seed: 5 }, dir);
  train = await loadTable(path.join(dir, 'train.parquet'), data.features);
});

afterAll(async () => {
  children.killAll();
  for (const s of servers) await s.close().catch(() => undefined);
  await pg?.query(`drop schema if exists "${SCHEMA}" cascade`).catch(() => undefined);
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('two replicas', () => {
  let a: RunningModelServer;
  let b: RunningModelServer;
  const model = `twin-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    [a, b] = await Promise.all([start(), start()]);
    await Promise.all([a.loaded, b.loaded]);
  });

  // The later tests' servers are the only live ones.
  afterAll(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  test('after setTraffic both report the same generation and route by the same weights; a version-pinned request works on both', async () => {
    const v1 = await register(model, 6);
    const v2 = await register(model, 8);
    const { modelId } = await ids(model, v1);
    const acts = deployment(a.url);
    await acts.deploy({ model, version: v1, slot: 'staging' });
    await acts.setTraffic({ model, traffic: { stable: v1 } });
    await acts.deploy({ model, version: v2, slot: 'staging' });
    await acts.setTraffic({ model, traffic: { stable: v1, canary: v2, canaryWeight: 50 } });
    // setTraffic returned: every live server serves the generation it wrote.
    const generation = await generationOf(modelId);
    for (const s of [a, b]) {
      const r = await reported(s.url, model);
      expect(r).toMatchObject({ traffic: { stable: v1, canary: v2, canaryWeight: 50 }, generation });
    }
    const rows = await pg.query(`select id, endpoint, (applied->>$1)::bigint as g from model_servers where stopped_at is null and id = any($2)`, [modelId, [a.sync.opts.serverId, b.sync.opts.serverId]]);
    expect(rows.rows.map((x: { g: string }) => Number(x.g))).toEqual([generation, generation]);
    for (const s of [a, b]) {
      const seen: Record<string, number> = {};
      for (let i = 0; i < 200; i++) {
        const r = await infer(s.url, model);
        expect(r.status).toBe(200);
        seen[r.version!] = (seen[r.version!] ?? 0) + 1;
      }
      // 50 %: 200 draws land within 60..140 with overwhelming probability.
      expect(seen[String(v2)]).toBeGreaterThan(60);
      expect(seen[String(v2)]).toBeLessThan(140);
      const pinned = await infer(s.url, model, { version: v2 });
      expect(pinned).toMatchObject({ status: 200, version: String(v2) });
    }
    // The admin API writes the database too: a change made on A is served by B.
    const res = await fetch(`${a.url}/admin/models/${model}/traffic`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ stable: v2 }) });
    expect(res.status).toBe(200);
    const { generation: adminGeneration } = (await res.json()) as { generation: number };
    await waitFor('B to apply the admin change', async () => ((await reported(b.url, model))?.generation === adminGeneration ? true : undefined), 30_000, 50);
    expect((await reported(b.url, model))!.traffic).toEqual({ stable: v2, canaryWeight: 0 });
    await acts.setTraffic({ model, traffic: { stable: v1, canary: v2, canaryWeight: 50 } });
  });

  test('canary errors are counted across replicas within the window', async () => {
    const v1 = 1;
    const v2 = 2;
    const { versionId } = await ids(model, v2);
    // The canary's model fails on both replicas (stable still answers).
    const restore: Array<() => void> = [];
    for (const s of [a, b]) {
      const session = s.store.models.get(model)!.versions.get(v2)!.session as unknown as { run: (...args: unknown[]) => Promise<unknown> };
      const original = session.run;
      session.run = async () => {
        throw new Error('injected canary failure');
      };
      restore.push(() => (session.run = original));
    }
    const canaryFailures = async (url: string, n: number) => {
      for (let failed = 0; failed < n; ) {
        const r = await infer(url, model);
        if (r.status === 500) failed++;
        else expect(r).toMatchObject({ status: 200, version: String(v1) });
      }
    };
    const errorsInDb = async () => Number((await pg.query(`select coalesce(sum(count), 0) as n from serving_errors where model_version_id = $1 and role = 'canary'`, [versionId])).rows[0].n);
    try {
      // Before the window: 2 on A.
      await canaryFailures(a.url, 2);
      await waitFor('2 canary errors in serving_errors', async () => ((await errorsInDb()) === 2 ? true : undefined), 30_000, 50);
      const last = (await pg.query(`select max(bucket) as b from serving_errors where model_version_id = $1`, [versionId])).rows[0].b as Date;
      const since = new Date(last.getTime() + 1000);
      await waitFor('the database clock past the window start', async () => (((await pg.query('select now() as n')).rows[0].n as Date) > since ? true : undefined), 10_000, 50);
      // In the window: 3 on A, 4 on B.
      await canaryFailures(a.url, 3);
      await canaryFailures(b.url, 4);
      await waitFor('9 canary errors in serving_errors', async () => ((await errorsInDb()) === 9 ? true : undefined), 30_000, 50);
      const figures = await deployment(a.url).canaryFigures({ model, stable: v1, canary: v2, since: since.toISOString() });
      expect(figures.canaryErrors).toBe(7);
      const servers = await pg.query(`select distinct server_id from serving_errors where model_version_id = $1 and bucket >= $2`, [versionId, since]);
      expect(servers.rows).toHaveLength(2);
    } finally {
      for (const r of restore) r();
    }
  });

  test('readiness is 503 until every version a server must hold is loaded', async () => {
    const other = `ready-${randomUUID().slice(0, 8)}`;
    const v1 = await register(other, 5);
    const { modelId, versionId, artifactId } = await ids(other, v1);
    // The version's bytes are not in the artifact store (yet).
    const artifact = (await pg.query(`select uri, sha256 from artifacts where id = $1`, [artifactId])).rows[0] as { uri: string; sha256: string };
    await runtime.artifacts.delete(runtime.artifacts.keyFromUri(artifact.uri));
    await runtime.db.transaction().execute((trx) => changeServingState(trx, { modelId, by: 'test', traffic: { stableVersionId: versionId, canaryVersionId: null, canaryWeight: 0, shadowVersionId: null } }));
    const fresh = await start();
    for (const s of [a, fresh]) {
      const body = await waitFor(`${s.url} to report ${other} v${v1} missing`, async () => {
        const res = await fetch(`${s.url}/v2/health/ready`);
        const json = (await res.json()) as { ready: boolean; missing?: string[] };
        return res.status === 503 && json.missing?.includes(`${other} v${v1}`) ? json : undefined;
      }, 30_000, 50);
      expect(body.ready).toBe(false);
      expect((await fetch(`${s.url}/v2/models/${other}/ready`)).status).toBe(503);
      expect((await fetch(`${s.url}/v2/models/${other}/versions/${v1}/ready`)).status).toBe(503);
    }
    const row = await waitFor('the fresh server to report what it misses', async () => {
      const r = await pg.query(`select ready, missing from model_servers where id = $1`, [fresh.sync.opts.serverId]);
      return (r.rows[0]?.missing as string[] | undefined)?.includes(`${other} v${v1}`) ? r.rows[0] : undefined;
    }, 30_000, 50);
    expect(row.ready).toBe(false);
    // The bytes arrive: each server loads them (on its retry) and becomes ready.
    await runtime.artifacts.putContent(onnxBytes.get(artifact.sha256)!, { mediaType: 'application/onnx' });
    for (const s of [a, fresh]) {
      await waitFor(`${s.url} ready`, async () => ((await fetch(`${s.url}/v2/health/ready`)).status === 200 ? true : undefined), 60_000, 100);
      expect((await fetch(`${s.url}/v2/models/${other}/ready`)).status).toBe(200);
      expect((await infer(s.url, other)).status).toBe(200);
    }
  });
});

test('SIGTERM flushes the prediction-log buffer (a flush interval far longer than the test)', async () => {
  const model = `flush-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 5);
  const { modelId, versionId } = await ids(model, v1);
  await runtime.db.transaction().execute((trx) => changeServingState(trx, { modelId, by: 'test', traffic: { stableVersionId: versionId, canaryVersionId: null, canaryWeight: 0, shadowVersionId: null } }));
  const generation = await generationOf(modelId);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = serveProcess(port, { MLOPS_SERVE_PREDICTION_LOG_INTERVAL_MS: '3600000' });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await waitFor('the server to serve the generation', async () => ((await reported(url, model).catch(() => undefined))?.generation === generation ? true : undefined), 60_000, 100);
  const prefix = `flush-${randomUUID()}`;
  for (let i = 0; i < 20; i++) expect((await infer(url, model, { requestId: `${prefix}-${i}` })).status).toBe(200);
  const pending = await (await fetch(`${url}/metrics`)).text();
  expect(pending).toMatch(/^mlops_prediction_log_pending_rows 20$/m);
  expect((await pg.query(`select count(*)::int n from prediction_log where request_id like $1`, [`${prefix}-%`])).rows[0].n).toBe(0);
  process.kill(child.pid!, 'SIGTERM');
  expect(await exited).toBe(0);
  expect((await pg.query(`select count(*)::int n from prediction_log where request_id like $1`, [`${prefix}-%`])).rows[0].n).toBe(20);
  const stopped = await pg.query(`select count(*)::int n from model_servers where endpoint = $1 and stopped_at is not null`, [url]);
  expect(stopped.rows[0].n).toBe(1);
});

test('kill -9 of the model server during a canary stage: the restarted server serves the same split from the database and the promotion finishes', async () => {
  const model = `crashserve-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 8);
  const v2 = await register(model, 10);
  const { modelId, versionId: canaryId } = await ids(model, v2);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  runtime.config.modelServer = { url, adminToken: TOKEN };
  let first = serveProcess(port);
  await waitFor('the model server to start', async () => ((await fetch(`${url}/v2/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 60_000, 100);
  const fast = { bakeSeconds: 6, maxBakeSeconds: 60, canarySteps: [30, 60, 100], loadTest: { seconds: 1, concurrency: 2 }, gates: { maxP99Ms: 500, minCanaryRows: 5 } } satisfies Partial<PromotionInput>;
  let stop = false;
  // Users keep sending requests; while the server is down they fail to connect.
  const load = (async () => {
    while (!stop) {
      await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', body: JSON.stringify(row()) })
        .then((r) => r.arrayBuffer())
        .catch(() => new Promise((r) => setTimeout(r, 50)));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    const result = await withTestWorkers(
      env,
      runtime,
      async () => {
        const direct = await env.client.workflow.execute('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [{ model, version: v1, strategy: 'direct', ...fast }] });
        expect((direct as PromotionStatus).outcome).toBe('promoted');
        const handle = await env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [{ model, version: v2, strategy: 'canary', ...fast }] });
        // The server's own traffic: the canary serves.
        const serving = await waitFor('the server to serve the canary', async () => {
          const r = await reported(url, model);
          return r?.traffic.canary === v2 ? r : undefined;
        }, 120_000, 50);
        expect(serving.traffic).toMatchObject({ stable: v1, canary: v2, canaryWeight: 30 });
        process.kill(-first.pid!, 'SIGKILL');
        await new Promise((r) => first.once('exit', r));
        const killedAt = (await pg.query('select now() as n')).rows[0].n as Date;
        const generation = await generationOf(modelId);
        first = serveProcess(port);
        // Its first answer: the split from the database (the generation the workflow wrote, or a later one), before any new command.
        const restarted = await waitFor('the restarted server to serve', async () => ((await fetch(`${url}/v2/health/ready`).catch(() => undefined))?.status === 200 ? reported(url, model) : undefined), 60_000, 50);
        expect(restarted.generation).toBeGreaterThanOrEqual(generation);
        expect(restarted.traffic.canary).toBe(v2);
        expect(restarted.traffic.stable).toBe(v1);
        // And it routes to the canary: its rows, logged after the restart.
        await waitFor('canary rows from the restarted server', async () => {
          const r = await pg.query(`select count(*)::int n from prediction_log where model_version_id = $1 and outputs->>'role' = 'canary' and ts > $2`, [canaryId, killedAt]);
          return r.rows[0].n >= 3 ? true : undefined;
        }, 60_000, 100);
        return (await handle.result()) as PromotionStatus;
      },
      { queues: [TASK_QUEUES.control] },
    );
    expect(result.outcome).toBe('promoted');
    expect(Object.keys(result.figures)).toEqual(expect.arrayContaining(['canary 30%', 'canary 60%']));
  } finally {
    stop = true;
    await load;
  }
  const production = await pg.query(`select mv.version from model_aliases a join model_versions mv on mv.id = a.model_version_id where a.model_id = $1 and a.alias = 'production'`, [modelId]);
  expect(production.rows).toEqual([{ version: v2 }]);
  expect((await reported(url, model))!.traffic).toEqual({ stable: v2, canaryWeight: 0 });
  process.kill(first.pid!, 'SIGTERM');
  await new Promise((r) => first.once('exit', r));
});
