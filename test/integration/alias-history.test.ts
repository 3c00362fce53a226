import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { getModelByName, getModelVersion, setAlias } from '../../infra/db/repositories';
import type { RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { promotionWorkflowId, type PromotionInput, type PromotionStatus } from '../../workflows/promotion';
import { createTemporalEnv, independentPg, openTestRuntime, testEnv } from '../helpers/real';
import { serveForTest } from '../helpers/serving';
import { withTestWorkers, workflowBundle } from '../helpers/workers';
import { registeredModels, type RegisteredModels } from '../helpers/registered-models';
import { runEntry } from '../helpers/run-entry';

/** The append-only alias history: every move with its workflow and reason, and where a rollback goes. */

const TOKEN = 'alias-history-token-0123';
let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let server: RunningModelServer;
let models: RegisteredModels;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`hist-${randomUUID().slice(0, 8)}`)]);
  pg = await independentPg();
  await workflowBundle();
  models = await registeredModels(runtime, 8000);
  server = await serveForTest(runtime, TOKEN);
});

afterAll(async () => {
  await server?.close();
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
  models?.close();
});

const fast = { strategy: 'direct', loadTest: { seconds: 0.5, concurrency: 2 }, gates: { maxP99Ms: 1000 } } satisfies Partial<PromotionInput>;

async function promote(input: PromotionInput): Promise<{ status: PromotionStatus; runId: string }> {
  return withTestWorkers(
    env,
    runtime,
    async () => {
      const handle = await env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(input.model), args: [input] });
      return { status: (await handle.result()) as PromotionStatus, runId: handle.firstExecutionRunId };
    },
    { queues: [TASK_QUEUES.control] },
  );
}

async function production(model: string): Promise<number | undefined> {
  const r = await pg.query(`select mv.version from model_aliases a join models m on m.id = a.model_id join model_versions mv on mv.id = a.model_version_id where m.name = $1 and a.alias = 'production'`, [model]);
  return r.rows[0]?.version as number | undefined;
}

interface HistoryRow {
  version: number;
  from_version: number | null;
  kind: string;
  ended_by: string | null;
  moved_by: string | null;
  reason: string | null;
  run_id: string | null;
  valid_from: Date;
  valid_until: Date | null;
}

async function history(model: string): Promise<HistoryRow[]> {
  const r = await pg.query(
    `select v.version, p.version as from_version, h.kind, h.ended_by, h.moved_by, h.reason, h.details->>'runId' as run_id, h.valid_from, h.valid_until
       from alias_history h join models m on m.id = h.model_id join model_versions v on v.id = h.model_version_id left join model_versions p on p.id = h.previous_version_id
      where m.name = $1 and h.alias = 'production' order by h.id`,
    [model],
  );
  return r.rows as HistoryRow[];
}

test('three promotions, then a rollback: production is the version before, and the history holds all four moves with their workflows', async () => {
  const model = `hist-${randomUUID().slice(0, 8)}`;
  const v1 = await models.register(model, 'real', 6);
  const v2 = await models.register(model, 'real', 7);
  const v3 = await models.register(model, 'real', 8);
  const runs: string[] = [];
  for (const version of [v1, v2, v3]) {
    const { status, runId } = await promote({ model, version, ...fast });
    expect(status.outcome).toBe('promoted');
    runs.push(runId);
  }
  expect(await production(model)).toBe(v3);
  const rolled = await promote({ model, rollback: true, reason: 'bad deploy' });
  expect(rolled.status.outcome).toBe('rolled-back');
  expect(await production(model)).toBe(v2);
  runs.push(rolled.runId);

  const h = await history(model);
  expect(h.map((r) => [r.version, r.from_version, r.kind, r.ended_by])).toEqual([
    [v1, null, 'promote', 'promote'],
    [v2, v1, 'promote', 'promote'],
    [v3, v2, 'promote', 'rollback'],
    [v2, v3, 'rollback', null],
  ]);
  expect(h.map((r) => r.moved_by)).toEqual(new Array(4).fill(promotionWorkflowId(model)));
  expect(h.map((r) => r.run_id)).toEqual(runs);
  expect(h[3]!.reason).toBe('bad deploy');
  // Tenures follow each other without gaps: each one ends when the next begins.
  for (let i = 1; i < h.length; i++) expect(h[i - 1]!.valid_until?.getTime()).toBe(h[i]!.valid_from.getTime());
  expect(h[3]!.valid_until).toBeNull();

  // Which version was in production at a given time.
  const m = (await getModelByName(runtime.db, model))!;
  const mid = new Date((h[1]!.valid_from.getTime() + h[1]!.valid_until!.getTime()) / 2);
  const out = await runEntry('client/cli.ts', ['models', '--model', model, '--history', '--alias', 'production', '--at', mid.toISOString(), '--json'], { ...process.env, ...testEnv(), MLOPS_LOG_LEVEL: 'WARN' }, 60_000);
  expect(out.code).toBe(0);
  expect((JSON.parse(out.stdout) as Array<{ version: number }>).map((x) => x.version)).toEqual([v2]);
  const all = await runEntry('client/cli.ts', ['models', '--model', model, '--history'], { ...process.env, ...testEnv(), MLOPS_LOG_LEVEL: 'WARN' }, 60_000);
  expect(all.code).toBe(0);
  expect(all.stdout).toMatch(/production\s+v2\s+v3\s+\S+\s+now\s+rollback/);

  // A second rollback skips v3 (it was rolled back) and goes to v1, the holder before v2's first tenure.
  const again = await promote({ model, rollback: true, reason: 'still bad' });
  expect(again.status.outcome).toBe('rolled-back');
  expect(await production(model)).toBe(v1);
  expect(server.store.models.get(model)!.traffic.stable).toBe(v1);

  // Pointing an alias where it already is (a retried activity) appends nothing.
  const before = (await history(model)).length;
  const mv1 = (await getModelVersion(runtime.db, m.id, v1))!;
  expect((await setAlias(runtime.db, m.id, 'production', mv1.id, { kind: 'promote' })).moved).toBe(false);
  expect((await history(model)).length).toBe(before);
});

test('a promotion rolled back by its watch period is never a rollback target, nor is a candidate that failed its canary', async () => {
  const model = `histw-${randomUUID().slice(0, 8)}`;
  const v1 = await models.register(model, 'real', 6);
  const v2 = await models.register(model, 'real', 7);
  const v3 = await models.register(model, 'inverted', 6);
  expect((await promote({ model, version: v1, ...fast })).status.outcome).toBe('promoted');
  // v2 reaches production, then its watch ends in a rollback signal: the compensation reverts to v1.
  const watched = await withTestWorkers(
    env,
    runtime,
    async () => {
      const handle = await env.client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId: promotionWorkflowId(model), args: [{ model, version: v2, ...fast, watchSeconds: 600 }] });
      // Wait for the alias itself to move before signalling: the state the signal must undo.
      while ((await production(model)) !== v2) await new Promise((r) => setTimeout(r, 100));
      await handle.signal('rollback', { reason: 'pager' });
      return (await handle.result()) as PromotionStatus;
    },
    { queues: [TASK_QUEUES.control] },
  );
  expect(watched.outcome).toBe('rolled-back');
  expect(await production(model)).toBe(v1);
  // v3 fails its canary (inverted labels shift predictions); it never holds production.
  const canary = await promote({ model, version: v3, strategy: 'canary', canarySteps: [50, 100], bakeSeconds: 0.5, maxBakeSeconds: 1, loadTest: { seconds: 0.5, concurrency: 2 }, gates: { maxP99Ms: 1000, minCanaryRows: 1000000 } });
  expect(canary.status.outcome).toBe('rolled-back');
  const h = await history(model);
  expect(h.map((r) => [r.version, r.kind, r.ended_by])).toEqual([
    [v1, 'promote', 'promote'],
    [v2, 'promote', 'revert'],
    [v1, 'revert', null],
  ]);
  expect(h[2]!.reason).toMatch(/rollback asked: pager/);
  // Nothing earlier than v1 that did not fail: a rollback has nowhere to go.
  const { status } = await promote({ model, rollback: true }).catch((err: Error) => ({ status: { outcome: 'failed', reason: String(err.cause ?? err.message) } as unknown as PromotionStatus }));
  expect(status.outcome).toBe('failed');
  expect(status.reason).toMatch(/no earlier production version/);
  expect(await production(model)).toBe(v1);
});
