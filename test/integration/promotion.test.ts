import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import type { RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { promotionWorkflowId, type PromotionInput, type PromotionStatus } from '../../workflows/promotion';
import { createTemporalEnv, independentPg, openTestRuntime, testEnv } from '../helpers/real';
import { compiledEntry } from '../../infra/entry';
import { PROJECT_ROOT } from '../../infra/paths';
import { spawn, type ChildProcess } from 'node:child_process';
import { constantRow, serveForTest } from '../helpers/serving';
import { withTestWorkers, workflowBundle } from '../helpers/workers';
import { runEntry } from '../helpers/run-entry';
import { registeredModels, type RegisteredModels } from '../helpers/registered-models';
import type { PreparedData } from '../../activities/data/prepare';
import { epochSeconds, requestInputs } from '../../activities/ml/model-inputs';

/** promotion against the real model server, registry and Temporal: canary, rollback, approval. */

const TOKEN = 'promotion-test-token-0123';
let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let server: RunningModelServer;
let data: PreparedData;
const bucket = `promo-${randomUUID().slice(0, 8)}`;

let models: RegisteredModels;
const register = (model: string, labels: 'real' | 'inverted', rounds: number) => models.register(model, labels, rounds);

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket)]);
  pg = await independentPg();
  await workflowBundle();
  models = await registeredModels(runtime);
  data = models.data;
  server = await serveForTest(runtime, TOKEN);
});

afterAll(async () => {
  await server?.close();
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
  models?.close();
});

/**
 * Steady unversioned traffic while a promotion runs: one row, so stable and canary score the same
 * input and the prediction PSI sees the versions' difference, not the sampling of two small sets
 * of rows. A Saturday at 10:00 UTC: the row these tests sent when the model took hour and day of
 * week (10 for both; a day of week of 10 takes every tree's branch that 6, Saturday, takes).
 */
function traffic(model: string) {
  let stop = false;
  const row = constantRow(data.features, { number: 10, text: 'ORD', epoch: epochSeconds('2001-01-06T10:00:00Z') });
  const failures: number[] = [];
  const loop = (async () => {
    while (!stop) {
      const res = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', body: JSON.stringify(row) });
      if (res.status !== 200 && res.status !== 404) failures.push(res.status);
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { failures, stop: async () => ((stop = true), await loop) };
}

async function promote(input: PromotionInput, during?: (id: string) => Promise<void>): Promise<PromotionStatus> {
  const workflowId = promotionWorkflowId(input.model);
  return withTestWorkers(
    env,
    runtime,
    async () => {
      const handle = await env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId, args: [input] });
      if (during) await during(workflowId);
      return (await handle.result()) as PromotionStatus;
    },
    { queues: [TASK_QUEUES.control] },
  );
}

async function production(model: string): Promise<number | undefined> {
  const r = await pg.query(`select mv.version from model_aliases a join models m on m.id = a.model_id join model_versions mv on mv.id = a.model_version_id where m.name = $1 and a.alias = 'production'`, [model]);
  return r.rows[0]?.version as number | undefined;
}

const fast = { bakeSeconds: 1.5, canarySteps: [30, 60, 100], loadTest: { seconds: 1, concurrency: 4 }, gates: { maxP99Ms: 500, minCanaryRows: 5 } } satisfies Partial<PromotionInput>;

test('first version goes straight to production; a good candidate is promoted through canary; a shifted one is rolled back', async () => {
  const model = `promo-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 20);
  const v2 = await register(model, 'real', 30);
  const v3 = await register(model, 'inverted', 20);

  const first = await promote({ model, version: v1, strategy: 'canary', ...fast });
  expect(first.outcome).toBe('promoted');
  expect(first.previous).toBeNull();
  expect((first.figures.contract as { maxAbsDiff: number }).maxAbsDiff).toBeLessThanOrEqual(1e-5);
  expect(await production(model)).toBe(v1);

  const load = traffic(model);
  const second = await promote({ model, version: v2, strategy: 'canary', ...fast }).catch(async (err) => {
    await load.stop();
    throw err;
  });
  expect(second.outcome).toBe('promoted');
  expect(Object.keys(second.figures)).toEqual(expect.arrayContaining(['contract', 'load', 'canary 30%', 'canary 60%']));
  expect(await production(model)).toBe(v2);
  expect(server.store.models.get(model)!.traffic.stable).toBe(v2);
  expect(server.store.models.get(model)!.traffic.canary).toBeUndefined();

  const third = await promote({ model, version: v3, strategy: 'canary', ...fast }).finally(() => load.stop());
  expect(third.outcome).toBe('rolled-back');
  expect(third.reason).toMatch(/^canary 30%: prediction PSI \d/);
  expect((third.figures['canary 30%'] as { predictionPsi: number }).predictionPsi).toBeGreaterThan(0.2);
  // Production never moved, and the server is back on it.
  expect(await production(model)).toBe(v2);
  expect(server.store.models.get(model)!.traffic.stable).toBe(v2);
  expect(server.store.models.get(model)!.traffic.canary).toBeUndefined();
  expect(load.failures).toEqual([]);
  const rows = await pg.query(`select count(*)::int n from model_aliases a join models m on m.id = a.model_id where m.name = $1 and a.alias = 'production'`, [model]);
  expect(rows.rows[0].n).toBe(1);
  const deployments = await pg.query(
    `select mv.version, d.status, d.weight from deployments d join model_versions mv on mv.id = d.model_version_id join models m on m.id = mv.model_id where m.name = $1 and d.slot = 'serving' order by mv.version`,
    [model],
  );
  expect(deployments.rows).toEqual([
    { version: v1, status: 'standby', weight: 0 },
    { version: v2, status: 'production', weight: 100 },
    { version: v3, status: 'standby', weight: 0 },
  ]);
});

test('a canary that gets no traffic bakes longer, then fails for want of evidence; production stays', async () => {
  const model = `promo-quiet-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 20);
  const v2 = await register(model, 'real', 25);
  expect((await promote({ model, version: v1, strategy: 'direct', ...fast })).outcome).toBe('promoted');
  const quiet = await promote({ model, version: v2, strategy: 'canary', ...fast, bakeSeconds: 1, maxBakeSeconds: 3 });
  expect(quiet.outcome).toBe('rolled-back');
  expect(quiet.reason).toBe('canary 30%: 0 rows < 5 after 3s');
  expect(await production(model)).toBe(v1);
  expect(server.store.models.get(model)!.traffic).toMatchObject({ stable: v1 });
  expect(server.store.models.get(model)!.traffic.canary).toBeUndefined();
});

test('a shadow candidate with inverted labels is judged on its own shadow rows and rolled back', async () => {
  const model = `promo-shadow-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 20);
  const v2 = await register(model, 'inverted', 20);
  expect((await promote({ model, version: v1, strategy: 'direct', ...fast })).outcome).toBe('promoted');
  const load = traffic(model);
  const shadowed = await promote({ model, version: v2, strategy: 'shadow', ...fast }).finally(() => load.stop());
  expect(shadowed.outcome).toBe('rolled-back');
  expect(shadowed.reason).toMatch(/^shadow: prediction PSI \d/);
  const f = shadowed.figures.shadow as { canaryRows: number; predictionPsi: number };
  expect(f.canaryRows).toBeGreaterThanOrEqual(5);
  expect(f.predictionPsi).toBeGreaterThan(0.2);
  expect(await production(model)).toBe(v1);
  expect(server.store.models.get(model)!.traffic.shadow).toBeUndefined();
  expect(load.failures).toEqual([]);
});

/** Real rows with their labels, as an application would send them and later report the outcome. */
function labelledTraffic(model: string) {
  let stop = false;
  const t = models.train;
  let sent = 0;
  const loop = (async () => {
    for (let i = 0; !stop; i = (i + 1) % t.rows) {
      const ids: string[] = [];
      for (let k = 0; k < 10 && !stop; k++, i = (i + 1) % t.rows) {
        const id = `lab-${model}-${sent++}`;
        const inputs = requestInputs(t, t.features, i, i + 1);
        const res = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body: JSON.stringify({ inputs }) });
        await res.arrayBuffer();
        if (res.ok) ids.push(`${id}:${t.label[i]}`);
      }
      // The outcome arrives later, once the rows (and the shadow's) are in the log.
      await new Promise((r) => setTimeout(r, 300));
      if (!ids.length) continue;
      const labels = ids.map((x) => ({ request_id: x.slice(0, x.lastIndexOf(':')), label: Number(x.slice(x.lastIndexOf(':') + 1)) }));
      await (await fetch(`${server.url}/v2/models/${model}/feedback`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ labels }) })).arrayBuffer();
    }
  })();
  return { stop: async () => ((stop = true), await loop) };
}

test('a shadow candidate that predicts worse on the labels that arrive is rolled back, even when its predictions do not shift enough to fail', async () => {
  const model = `promo-labels-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 20);
  const v2 = await register(model, 'inverted', 20);
  expect((await promote({ model, version: v1, strategy: 'direct', ...fast })).outcome).toBe('promoted');
  const load = labelledTraffic(model);
  const shadowed = await promote({ model, version: v2, strategy: 'shadow', ...fast, bakeSeconds: 2, maxBakeSeconds: 60, gates: { ...fast.gates, maxPredictionPsi: 100, minCanaryRows: 80, minLabeledRows: 20 } }).finally(() => load.stop());
  expect(shadowed.outcome).toBe('rolled-back');
  expect(shadowed.reason).toMatch(/^shadow: log loss \S+ vs stable \S+ on labelled rows/);
  const f = shadowed.figures.shadow as { canaryLabeled: number; stableLabeled: number; canaryLogLoss: number; stableLogLoss: number };
  expect(f.canaryLabeled).toBeGreaterThanOrEqual(20);
  expect(f.canaryLogLoss).toBeGreaterThan(f.stableLogLoss);
  // The labels reached the shadow's own rows, request by request.
  const labelled = await pg.query(`select count(*)::int n from prediction_log where request_id like $1 and label is not null`, [`lab-${model}-%:shadow`]);
  expect(labelled.rows[0].n).toBeGreaterThanOrEqual(20);
  expect(await production(model)).toBe(v1);
});

test('approval: a timeout rejects, `approve` promotes, `rollback` during the watch returns to the previous version', async () => {
  const model = `approve-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 10);
  const v2 = await register(model, 'real', 15);
  await promote({ model, version: v1, strategy: 'direct', ...fast });

  const timedOut = await promote({ model, version: v2, strategy: 'direct', ...fast, approval: { timeoutSeconds: 2 } });
  expect(timedOut.outcome).toBe('rejected');
  expect(timedOut.reason).toMatch(/no approval within 2s/);
  expect(await production(model)).toBe(v1);

  const approved = await promote({ model, version: v2, strategy: 'direct', ...fast, approval: { timeoutSeconds: 60 }, watchSeconds: 60 }, async (id) => {
    const h = env.client.workflow.getHandle(id);
    for (;;) {
      const s = (await h.query('status')) as PromotionStatus;
      if (s.stage === 'awaiting-approval') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await h.signal('approve', { by: 'test' });
    for (;;) {
      const s = (await h.query('status')) as PromotionStatus;
      if (s.stage === 'watching') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await production(model)).toBe(v2);
    const t0 = Date.now();
    await h.signal('rollback', { reason: 'pager' });
    for (;;) {
      if ((await production(model)) === v1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
  expect(approved.outcome).toBe('rolled-back');
  expect(approved.reason).toMatch(/rollback asked: pager/);
  expect(await production(model)).toBe(v1);
  expect(server.store.models.get(model)!.traffic.stable).toBe(v1);
});

test('two promotions of one model never interleave: the second is refused while the first runs', async () => {
  const model = `serial-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 10);
  await promote({ model, version: v1, strategy: 'direct', ...fast });
  const v2 = await register(model, 'real', 12);
  await withTestWorkers(
    env,
    runtime,
    async () => {
      const first = await env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [{ model, version: v2, strategy: 'direct', ...fast, approval: { timeoutSeconds: 60 } }] });
      await expect(env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [{ model, version: v2, strategy: 'direct' }] })).rejects.toThrow(/already started/i);
      const elsewhere = await env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: `not-the-promotion-id-${model}`, args: [{ model, version: v2 }] });
      await expect(elsewhere.result()).rejects.toThrow();
      await first.signal('reject', { reason: 'test' });
      expect(((await first.result()) as PromotionStatus).outcome).toBe('rejected');
    },
    { queues: [TASK_QUEUES.control] },
  );
  expect(await production(model)).toBe(v1);
});

test('train → promote (canary) → serve: the registry, the server and the deployments table agree', async () => {
  const model = `e2e-${randomUUID().slice(0, 8)}`;
  // Quick models: this test is about promotion, so the baseline gate (which 10 shallow trees on 20k rows lose) is let go.
  const spec = { model, dataset: { flights: { from: '2001-02', to: '2001-02' } }, preset: 'flights-delay', sampleRows: 20_000, hyperparameters: { rounds: 10, maxDepth: 4 }, gates: { maxBaselineLoss: 1 } };
  const train = (hyperparameters: Record<string, number>, id: string) =>
    withTestWorkers(env, runtime, async () => (await env.client.workflow.execute('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: id, args: [{ ...spec, hyperparameters }] })) as { version: number; status: string });
  const first = await train({ rounds: 10, maxDepth: 4 }, `ct-${model}-1`);
  expect((await promote({ model, version: first.version, strategy: 'canary', ...fast })).outcome).toBe('promoted');
  const second = await train({ rounds: 12, maxDepth: 4 }, `ct-${model}-2`);
  expect(second.status).toBe('registered');
  const load = traffic(model);
  const promoted = await promote({ model, version: second.version, strategy: 'canary', ...fast }).finally(() => load.stop());
  expect(promoted.outcome).toBe('promoted');
  expect(Object.keys(promoted.figures)).toEqual(expect.arrayContaining(['contract', 'load', 'canary 30%', 'canary 60%']));
  expect(load.failures).toEqual([]);
  expect(await production(model)).toBe(second.version);
  const row = constantRow(data.features, { number: 12, text: 'ATL' });
  const res = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', body: JSON.stringify(row) });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { model_version: string }).model_version).toBe(String(second.version));
  const deployments = await pg.query(
    `select d.status, d.weight, mv.version from deployments d join model_versions mv on mv.id = d.model_version_id join models m on m.id = mv.model_id where m.name = $1 and d.slot = 'serving' order by mv.version`,
    [model],
  );
  expect(deployments.rows).toEqual([
    { status: 'standby', weight: 0, version: first.version },
    { status: 'production', weight: 100, version: second.version },
  ]);
  expect(server.store.models.get(model)!.traffic.stable).toBe(second.version);
});

test('kill -9 of the worker during a canary step: the promotion continues after restart and ends with one production version', async () => {
  const model = `crashpromo-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 10);
  const v2 = await register(model, 'real', 14);
  await promote({ model, version: v1, strategy: 'direct', ...fast });
  const children: ChildProcess[] = [];
  const startWorker = () => {
    const child = spawn(process.execPath, [compiledEntry('workers/dev.ts'), '--queues', 'control'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...testEnv(bucket), TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default', MLOPS_LOG_LEVEL: 'WARN', MLOPS_MODEL_SERVER_URL: server.url, MLOPS_ADMIN_TOKEN: TOKEN },
      stdio: ['ignore', 'ignore', 'ignore'],
      detached: true,
    });
    children.push(child);
    return child;
  };
  const load = traffic(model);
  try {
    const first = startWorker();
    const handle = await env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [{ model, version: v2, strategy: 'canary', ...fast, bakeSeconds: 4, canarySteps: [30, 60, 100] }] });
    // The server's own traffic, not the stage string (set before the traffic is): the canary serves.
    for (let i = 0; ; i++) {
      if (server.store.models.get(model)?.traffic.canary === v2) break;
      if (i > 600) throw new Error(`the server never served the canary: ${JSON.stringify(await handle.query('status').catch(() => undefined))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    process.kill(-first.pid!, 'SIGKILL');
    await new Promise((r) => first.once('exit', r));
    // While no worker runs, the server keeps serving the canary split.
    expect(server.store.models.get(model)!.traffic).toMatchObject({ stable: v1, canary: v2 });
    startWorker();
    const result = (await handle.result()) as PromotionStatus;
    expect(result.outcome).toBe('promoted');
  } finally {
    await load.stop();
    for (const c of children) {
      try {
        if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  expect(await production(model)).toBe(v2);
  const rows = await pg.query(`select count(*)::int n from model_aliases a join models m on m.id = a.model_id where m.name = $1 and a.alias = 'production'`, [model]);
  expect(rows.rows[0].n).toBe(1);
  expect(server.store.models.get(model)!.traffic.stable).toBe(v2);
  expect(load.failures).toEqual([]);
});

test('`mlops rollback` returns a model to its previous production version at once', async () => {
  const model = `cliroll-${randomUUID().slice(0, 8)}`;
  const v1 = await register(model, 'real', 10);
  const v2 = await register(model, 'real', 13);
  await promote({ model, version: v1, strategy: 'direct', ...fast });
  await promote({ model, version: v2, strategy: 'direct', ...fast });
  expect(await production(model)).toBe(v2);
  const out = await withTestWorkers(
    env,
    runtime,
    () => runEntry('client/cli.ts', ['rollback', '--model', model, '--reason', 'bad deploy'], { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default', MLOPS_LOG_LEVEL: 'WARN' }, 120_000),
    { queues: [TASK_QUEUES.control] },
  );
  expect(out.code).toBe(0);
  expect(out.stdout).toContain(`${model}: rolled-back; production is v${v1}`);
  expect(await production(model)).toBe(v1);
  expect(server.store.models.get(model)!.traffic.stable).toBe(v1);
  const deployments = await pg.query(
    `select mv.version, d.status from deployments d join model_versions mv on mv.id = d.model_version_id join models m on m.id = mv.model_id where m.name = $1 and d.slot = 'serving' order by mv.version`,
    [model],
  );
  expect(deployments.rows).toEqual([
    { version: v1, status: 'production' },
    { version: v2, status: 'standby' },
  ]);
});
