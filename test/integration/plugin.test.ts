import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { SimplePlugin } from '@temporalio/plugin';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConfigError } from '../../infra/errors';
import { createLogger } from '../../infra/log';
import { PROJECT_ROOT } from '../../infra/paths';
import { createWorkers } from '../../workers/start';
import { resolveTaskQueues } from '../../workflows/contracts/task-queues';
import { runProcess } from '../helpers/run-entry';
import type { WorkerRuntime } from '../../workers/runtime';
import { MlopsPlugin, type MlopsPluginOptions } from '../../workers/plugin';
import type { PlatformCheckResult } from '../../workflows/platform-check';
import { createTemporalEnv, openTestRuntime } from '../helpers/real';
import { checkMetrics } from '../helpers/promtool';
import { waitFor } from '../helpers/wait';
import { SILENT_LOGGER } from '../helpers/workers';
import { signalLifecycle } from '../../client/lifecycle';
import { RETRAIN_SIGNAL, promotionWorkflowId } from '../../workflows/contracts/names';

/**
 * The plugin as a user adds it: on workers of their own queue names, beside a workflows module
 * of their own, bundled at worker start or prebuilt with bundleWorkflowCode; the queue names
 * reach the workflow sandbox (platformCheck probes exactly the configured queues).
 */

const USER_WORKFLOWS = path.join(__dirname, '..', 'fixtures', 'workflows', 'team.ts');

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`plugin-${randomUUID().slice(0, 8)}`)]);
});

afterAll(async () => {
  await runtime?.close();
  await env?.teardown();
});

function plugin(extra: Partial<MlopsPluginOptions>): MlopsPlugin {
  return new MlopsPlugin({ config: runtime.config, database: { db: runtime.db, schema: runtime.config.databaseSchema }, artifacts: runtime.artifacts, gpus: 'cpu', ...extra });
}

async function withWorkers<T>(p: MlopsPlugin, control: Partial<Parameters<typeof Worker.create>[0]>, fn: () => Promise<T>): Promise<T> {
  const q = p.taskQueues;
  const workers = [
    await Worker.create({ connection: env.nativeConnection, taskQueue: q.control, plugins: [p], ...control }),
    await Worker.create({ connection: env.nativeConnection, taskQueue: q.cpu, plugins: [p] }),
    await Worker.create({ connection: env.nativeConnection, taskQueue: q.gpu, plugins: [p] }),
  ];
  const running = Promise.all(workers.map((w) => w.run()));
  try {
    return await fn();
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running;
  }
}

test('the plugin is a SimplePlugin; our workflows and the user’s share a worker bundled at start, on the user’s queue names', async () => {
  const p = plugin({ taskQueues: { prefix: `team-${randomUUID().slice(0, 6)}` } });
  expect(p).toBeInstanceOf(SimplePlugin);
  expect(p.name).toBe('temporal-mlops');
  await withWorkers(p, { workflowsPath: USER_WORKFLOWS }, async () => {
    const q = p.taskQueues;
    const check = await env.client.workflow.execute('platformCheck', { taskQueue: q.control, workflowId: `pc-${randomUUID()}`, args: [{}] });
    const result = check as PlatformCheckResult;
    expect(result.ok).toBe(true);
    expect(result.queues.map((o) => o.queue)).toEqual([q.control, q.cpu, q.gpu]);
    expect(result.queues.map((o) => o.ok ? o.result.worker.split('@')[0] : o.error)).toEqual([q.control, q.cpu, q.gpu]);
    expect(await env.client.workflow.execute('teamHello', { taskQueue: q.control, workflowId: `hello-${randomUUID()}`, args: ['acme'] })).toBe('hello acme');
    // The user's workflow starts ours as a child by reference; it inherits the configured queues.
    expect(await env.client.workflow.execute('teamPlatformCheck', { taskQueue: q.control, workflowId: `team-pc-${randomUUID()}` })).toEqual([`${q.control}:true`, `${q.cpu}:true`, `${q.gpu}:true`]);
  });
});

test('a bundle prebuilt with bundleWorkflowCode({ plugins }) carries the queue names; explicit names work as well as a prefix', async () => {
  const id = randomUUID().slice(0, 6);
  const p = plugin({ taskQueues: { control: `wf-${id}`, cpu: `batch-${id}`, gpu: `accel-${id}` } });
  const bundle = await bundleWorkflowCode({ workflowsPath: USER_WORKFLOWS, plugins: [p], logger: SILENT_LOGGER });
  await withWorkers(p, { workflowBundle: bundle }, async () => {
    const result = (await env.client.workflow.execute('platformCheck', { taskQueue: `wf-${id}`, workflowId: `pc-${randomUUID()}`, args: [{}] })) as PlatformCheckResult;
    expect(result.queues.map((o) => `${o.queue}:${o.ok}`)).toEqual([`wf-${id}:true`, `batch-${id}:true`, `accel-${id}:true`]);
    expect(await env.client.workflow.execute('teamHello', { taskQueue: `wf-${id}`, workflowId: `hello-${randomUUID()}`, args: ['bundled'] })).toBe('hello bundled');
  });
});

test('misconfigurations fail when the worker is created, each with one clear message', async () => {
  const p = plugin({ taskQueues: { prefix: 'acme' }, gpus: undefined });
  await expect(Worker.create({ connection: env.nativeConnection, taskQueue: 'somebody-else', plugins: [p] })).rejects.toThrow(
    /task queue "somebody-else" serves none of ours \(acme-control, acme-cpu, acme-gpu, acme-gpu-<class>\)/,
  );
  await expect(Worker.create({ connection: env.nativeConnection, taskQueue: 'acme-gpu-h100', plugins: [p] })).rejects.toThrow(/GPU queue acme-gpu-h100 needs GPUs: pass `gpus: await discoverGpuPool\(\)`/);
  expect(() => new MlopsPlugin({ env: {}, database: undefined })).toThrow(ConfigError);
  expect(() => new MlopsPlugin({ env: {} })).toThrow(/^no metadata store: set DATABASE_URL/);
  expect(() => new MlopsPlugin({ env: {}, database: { url: 'postgres://x@127.0.0.1/x' }, taskQueues: { control: 'same', cpu: 'same' } })).toThrow(/must be three different queues/);
});

test('MLOPS_TASK_QUEUE_PREFIX moves our own workers and the mlops CLI to the same queues', async () => {
  const taskQueues = resolveTaskQueues({ prefix: `ops-${randomUUID().slice(0, 6)}` });
  const started = await createWorkers({
    selection: { control: true, cpu: true, gpu: true },
    runtime: { ...runtime, config: { ...runtime.config, taskQueues } },
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    allowCpu: true,
    log: createLogger('test-worker'),
  });
  expect(started.queues).toEqual([taskQueues.control, taskQueues.cpu, taskQueues.gpu]);
  const running = started.run();
  try {
    const { PATH, HOME } = process.env;
    const r = await runProcess(path.join(PROJECT_ROOT, 'bin', 'mlops'), ['platform-check', '--json'], {
      cwd: PROJECT_ROOT,
      env: { PATH, HOME, TEMPORAL_ADDRESS: env.address, MLOPS_TASK_QUEUE_PREFIX: taskQueues.control.replace(/-control$/, '') },
      timeoutMs: 120_000,
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(r.stdout) as PlatformCheckResult;
    expect(result.queues.map((q) => `${q.queue}:${q.ok}`)).toEqual([`${taskQueues.control}:true`, `${taskQueues.cpu}:true`, `${taskQueues.gpu}:true`]);
  } finally {
    started.shutdown();
    await running;
  }
});

test('a user’s Workers get /metrics from the plugin: their lifecycles’ retrain decisions, promotions and our queues’ backlog, promtool-clean', async () => {
  const id = randomUUID().slice(0, 6);
  const p = plugin({ taskQueues: { prefix: `metrics-${id}` }, metrics: { port: 0, host: '127.0.0.1' } });
  const q = p.taskQueues;
  const model = `metrics-${id}`;
  let url = '';
  await withWorkers(p, {}, async () => {
    const metrics = (await p.serveMetrics())!;
    url = metrics.url;
    expect(metrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // A budget of 0: the first request waits (deferred), the same key again is a duplicate, a
    // second request joins the waiting one, a malformed one is rejected. No training runs.
    const lifecyclePolicy = { dailyBudget: 0, training: { preset: 'flights-delay' as const, dataset: { flights: { from: '2001-01', to: '2001-01' } } }, monitoring: { enabled: false } };
    const h = await signalLifecycle(env.client, model, 'retrain', { reason: 'drift', source: 'monitoring', dedupeKey: 'k1' }, lifecyclePolicy, q.control);
    await h.signal(RETRAIN_SIGNAL, { reason: 'drift again', source: 'monitoring', dedupeKey: 'k1' });
    await h.signal(RETRAIN_SIGNAL, { reason: 'nightly', source: 'schedule' });
    await h.signal(RETRAIN_SIGNAL, { reason: 42, source: 'webhook' });
    // A rollback with nothing to roll back to fails.
    await expect(env.client.workflow.execute('promotion', { taskQueue: q.control, workflowId: promotionWorkflowId(model), args: [{ model, rollback: true }] })).rejects.toThrow();
    const series = (text: string) => text.split('\n').filter((l) => l.startsWith('mlops_') && l.includes(`model="${model}"`)).sort();
    const text = await waitFor('the lifecycle’s four decisions and the promotion on /metrics', async () => {
      const t = await (await fetch(`${metrics.url}/metrics`)).text();
      return series(t).length >= 5 ? t : undefined;
    });
    expect(series(text)).toEqual(
      [
        `mlops_lifecycle_retrain_decisions_total{model="${model}",decision="coalesced",source="schedule"} 1`,
        `mlops_lifecycle_retrain_decisions_total{model="${model}",decision="deferred",source="monitoring"} 1`,
        `mlops_lifecycle_retrain_decisions_total{model="${model}",decision="duplicate",source="monitoring"} 1`,
        `mlops_lifecycle_retrain_decisions_total{model="${model}",decision="rejected",source="webhook"} 1`,
        `mlops_promotions_total{model="${model}",strategy="rollback",outcome="failed"} 1`,
      ].sort(),
    );
    // Our queues' backlog, from the server: every pair is there, and once the last signal's
    // workflow task is taken (the Workers poll them all) nothing waits.
    const pairs = [[q.control, 'workflow'], [q.control, 'activity'], [q.cpu, 'activity'], [q.gpu, 'activity']];
    for (const [queue, type] of pairs) expect(text).toMatch(new RegExp(`^mlops_task_queue_backlog\\{queue="${queue}",type="${type}"\\} \\d+$`, 'm'));
    await waitFor('an empty backlog on all our queues', async () => {
      const t = await (await fetch(`${metrics.url}/metrics`)).text();
      return pairs.every(([queue, type]) => t.includes(`mlops_task_queue_backlog{queue="${queue}",type="${type}"} 0\n`)) ? true : undefined;
    });
    for (const queue of [q.control, q.cpu, q.gpu]) expect(text).toContain(`mlops_worker_queues{queue="${queue}"} 1`);
    const lint = await checkMetrics(text);
    expect(lint).toEqual({ code: 0, output: '' });
    await h.terminate();
  });
  // The endpoint closes with the last Worker.
  await expect(fetch(`${url}/metrics`)).rejects.toThrow();
});
