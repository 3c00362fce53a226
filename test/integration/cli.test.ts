import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { PROJECT_ROOT } from '../../infra/paths';
import type { WorkerRuntime } from '../../workers/runtime';
import { lifecycleWorkflowId } from '../../workflows/contracts/names';
import type { LifecyclePolicyInput, LifecycleStatus } from '../../workflows/contracts/lifecycle';
import type { BinaryTrainingResult as TrainingResult } from '../../workflows/continuous-training';
import type { PipelineStatus } from '../../workflows/pipeline';
import { createTemporalEnv, openTestRuntime, testEnv } from '../helpers/real';
import { errorLines, runProcess, type EntryResult } from '../helpers/run-entry';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * The `mlops` CLI as users run it: bin/mlops in a child process, from a folder outside the
 * checkout, against a real Temporal dev server, real workers and the test database.
 */

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let workDir: string;
let releaseWorkers: () => void = () => undefined;
let workersDone: Promise<void> | undefined;
const bucket = `cli-${randomUUID().slice(0, 8)}`;
const uid = randomUUID().slice(0, 6);

/** Small and quick everywhere: 3000 rows, 5 rounds, CPU. */
const LIGHT_TRAINING = { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 3000, hyperparameters: { rounds: 5 }, resources: { gpu: 0 }, gates: { minAuc: 0.5 } };
const LIGHT_POLICY: LifecyclePolicyInput = { cooldownSeconds: 0, promote: false, training: LIGHT_TRAINING, monitoring: { enabled: false } };

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket)]);
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-cli-'));
  await fs.writeFile(path.join(workDir, 'spec.json'), JSON.stringify({ preset: 'flights-delay', hyperparameters: { rounds: 5 }, resources: { gpu: 0 }, gates: { minAuc: 0.5 } }));
  await fs.writeFile(path.join(workDir, 'policy.json'), JSON.stringify(LIGHT_POLICY));
  await workflowBundle();
  let started!: () => void;
  const ready = new Promise<void>((r) => (started = r));
  workersDone = withTestWorkers(env, runtime, () => {
    started();
    return new Promise<void>((r) => (releaseWorkers = r));
  });
  await Promise.race([ready, workersDone]);
});

afterAll(async () => {
  releaseWorkers();
  await workersDone?.catch(() => undefined);
  await runtime?.close();
  await env?.teardown();
  if (workDir) await fs.rm(workDir, { recursive: true, force: true });
});

function cliEnv(): NodeJS.ProcessEnv {
  const { PATH, HOME } = process.env;
  return { PATH, HOME, ...testEnv(bucket), TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default', MLOPS_LOG_LEVEL: 'WARN' };
}

/** bin/mlops from a folder outside the checkout, as a user would run it. */
function mlops(args: string[], timeoutMs = 120_000): Promise<EntryResult> {
  return runProcess(path.join(PROJECT_ROOT, 'bin', 'mlops'), args, { cwd: workDir, env: cliEnv(), timeoutMs });
}

function json<T>(r: EntryResult): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function expectOneError(r: EntryResult, pattern: RegExp): void {
  expect({ code: r.code, lines: errorLines(r.stderr), stdout: r.stdout }).toEqual({ code: 2, lines: [expect.stringMatching(pattern)], stdout: '' });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('train, models, status', () => {
  const model = `cli-train-${uid}`;
  let trained: { workflowId: string; state: string; result: TrainingResult };

  test('train waits with progress on stderr and prints the registered version as JSON', async () => {
    const workflowId = `train-cli-${uid}`;
    const r = await mlops(['train', '--model', model, '--spec', 'spec.json', '--months', '2001-01', '--sample-rows', '3000', '--workflow-id', workflowId, '--json'], 280_000);
    trained = json(r);
    expect(trained).toMatchObject({ workflowId, state: 'succeeded', result: { model, version: 1, status: 'registered', alias: 'candidate', reasons: [] } });
    expect(trained.result.metrics.auc).toBeGreaterThan(0.5);
    // Off a terminal, progress is plain lines: the step that runs, then each step as it ends.
    // The first progress line names the run; how far it got by then depends on the machine.
    expect(r.stderr).toMatch(new RegExp(`${workflowId}: (\\[\\d/7\\] \\S+ )?running`));
    for (const step of ['snapshot', 'validate-data', 'prepare', 'train', 'evaluate', 'validate-model', 'register']) expect(r.stderr).toMatch(new RegExp(`✓ ${step}\\s`));
  }, 300_000);

  test('models lists the version with its metrics and aliases', async () => {
    expect(trained).toBeDefined();
    const list = json<Array<{ name: string; aliases: Record<string, number>; versions: Array<Record<string, unknown>> }>>(await mlops(['models', '--model', model, '--json']));
    expect(list).toEqual([
      expect.objectContaining({
        name: model,
        aliases: { candidate: 1 },
        versions: [
          expect.objectContaining({
            version: 1,
            status: 'registered',
            aliases: ['candidate'],
            rejectionReasons: [],
            trainingWorkflowId: trained.workflowId,
            metrics: expect.objectContaining({ auc: trained.result.metrics.auc, logLoss: trained.result.metrics.logLoss }),
          }),
        ],
      }),
    ]);
    const human = await mlops(['models', '--model', model]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^${model}  \\(1 version; candidate v1;`));
    expect(human.stdout).toMatch(new RegExp(`v1\\s+registered\\s+\\S+Z\\s+AUC ${trained.result.metrics.auc.toFixed(4)}\\s+${trained.result.metrics.logLoss.toFixed(4)}\\s+candidate`));
    expectOneError(await mlops(['models', '--model', `nobody-${uid}`]), /^error: no model named "nobody-/);
  });

  test('status --workflow-id shows the run step by step', async () => {
    expect(trained).toBeDefined();
    const out = json<{ type: string; workflowStatus: string; status: PipelineStatus }>(await mlops(['status', '--workflow-id', trained.workflowId, '--json']));
    expect(out).toMatchObject({ type: 'continuousTraining', workflowStatus: 'COMPLETED', status: { state: 'succeeded' } });
    expect(out.status.steps.map((s) => [s.name, s.state])).toEqual(['snapshot', 'validate-data', 'prepare', 'train', 'evaluate', 'validate-model', 'register'].map((n) => [n, 'succeeded']));
    const human = await mlops(['status', '--workflow-id', trained.workflowId]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`continuousTraining ${trained.workflowId}: succeeded`);
    expect(human.stdout).toMatch(/✓\s+train\s+succeeded\s+mlops-cpu/);
    expect(human.stdout).toContain(`${model} v1: registered (alias candidate)`);
  });
});

test('a run that pauses: train exits 3 with the failure, resume with overrides finishes it', async () => {
  const model = `cli-pause-${uid}`;
  const workflowId = `train-cli-pause-${uid}`;
  const missing = `file://${path.join(workDir, 'missing.parquet')}`;
  const r = await mlops(['train', '--model', model, '--spec-json', JSON.stringify({ ...LIGHT_TRAINING, dataset: { uris: [missing] } }), '--workflow-id', workflowId, '--json'], 200_000);
  expect(r.code).toBe(3);
  const paused = JSON.parse(r.stdout) as { state: string; failure: { step: string; message: string } };
  expect(paused).toMatchObject({ state: 'awaiting-resume', failure: { step: 'snapshot' } });

  const human = await mlops(['status', '--workflow-id', workflowId]);
  expect(human.stdout).toContain(`failure at snapshot:`);
  expect(human.stdout).toContain(`mlops resume --workflow-id ${workflowId}`);

  const resumed = await mlops(['resume', '--workflow-id', workflowId, '--overrides', JSON.stringify({ dataset: { flights: { from: '2001-01', to: '2001-01' } } })]);
  expect({ code: resumed.code, stdout: resumed.stdout }).toEqual({ code: 0, stdout: expect.stringContaining(`resume sent to ${workflowId} with overrides dataset`) });
  expect(await env.client.workflow.getHandle(workflowId).result()).toMatchObject({ model, status: 'registered' });
  // A finished run has nothing to resume or abort.
  expectOneError(await mlops(['abort', '--workflow-id', workflowId]), /^error: training run .* is completed, not running: nothing to abort/);
}, 300_000);

describe('bad input ends in one error line and exit code 2', () => {
  test('a bad spec names the field and starts nothing', async () => {
    const r = await mlops(['train', '--model', `cli-bad-${uid}`, '--spec-json', '{"preset": "flights-delay", "hyperparameters": {"rounds": 0}}', '--months', '2001-01']);
    expectOneError(r, /^error: invalid spec: hyperparameters\.rounds: .*\(trainer gbdt\)/);
    const list = await env.client.workflow.list({ query: `WorkflowType = 'continuousTraining'` });
    for await (const w of list) expect(w.workflowId).not.toContain(`cli-bad-${uid}`);
  });

  test('unknown workflows, promotions and schedules', async () => {
    expectOneError(await mlops(['status', '--workflow-id', `no-such-${uid}`]), /^error: no workflow with id "no-such-.*" in namespace/);
    expectOneError(await mlops(['approve', '--model', `nobody-${uid}`]), /^error: no promotion with id "promotion-nobody-/);
    expectOneError(await mlops(['resume', '--workflow-id', `no-such-${uid}`, '--overrides', '{"sampleRows": 5000}']), /^error: no training run with id/);
    expectOneError(await mlops(['resume', '--workflow-id', 'x', '--overrides', '{"sampleRows": 5}']), /^error: invalid resume overrides: sampleRows: /);
    expectOneError(await mlops(['schedule', 'trigger', '--schedule-id', `no-such-${uid}`]), /^error: no schedule with id "no-such-/);
    expectOneError(await mlops(['policy', '--model', `cli-bad-${uid}`, '--file', '{"dailyBudget": -1}']), /^error: invalid policy \(--file\): dailyBudget: /);
  });

  test('unreachable Temporal keeps the shared message', async () => {
    const child = await new Promise<EntryResult>((resolve) => {
      const c = spawn(path.join(PROJECT_ROOT, 'bin', 'mlops'), ['status', '--workflow-id', 'x'], { cwd: workDir, env: { ...cliEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
    expectOneError(child, /^error: TEMPORAL_ADDRESS: cannot reach Temporal at 127\.0\.0\.1:1/);
  });
});

describe('closed loop', () => {
  test('schedule create, list, trigger, delete', async () => {
    const model = `cli-sched-${uid}`;
    const scheduleId = `retrain-cli-${uid}`;
    const created = json<{ scheduleId: string; model: string; workflowType: string; spec: string; nextActionTimes: string[] }>(
      await mlops(['schedule', 'create', '--model', model, '--every', '24h', '--schedule-id', scheduleId, '--reason', 'nightly from the cli test', '--policy', 'policy.json', '--json']),
    );
    expect(created).toMatchObject({ scheduleId, model, workflowType: 'scheduledRetrain', spec: 'every 86400s' });
    expect(created.nextActionTimes.length).toBeGreaterThan(0);
    expectOneError(await mlops(['schedule', 'create', '--model', model, '--cron', '0 2 * * *', '--schedule-id', scheduleId]), /already exists/);

    const described = await env.client.schedule.getHandle(scheduleId).describe();
    expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'scheduledRetrain', taskQueue: 'mlops-control', args: [{ model, reason: 'nightly from the cli test', policy: LIGHT_POLICY }] });
    expect(described.policies.overlap).toBe('SKIP');

    // The list endpoint is eventually consistent (visibility): poll.
    await waitFor('the schedule in `schedule list`', async () => {
      const list = json<Array<{ scheduleId: string; model?: string }>>(await mlops(['schedule', 'list', '--json']));
      return list.find((s) => s.scheduleId === scheduleId && s.model === model);
    }, 60_000);

    expect(json(await mlops(['schedule', 'trigger', '--schedule-id', scheduleId, '--json']))).toEqual({ scheduleId, triggered: true });
    const ran = await waitFor('a scheduled run', async () => {
      const d = await env.client.schedule.getHandle(scheduleId).describe();
      return d.info.recentActions[0];
    });
    expect(ran.action.workflow.workflowId).toMatch(new RegExp(`^scheduled-retrain/${model}`));
    // scheduledRetrain hands the retrain to the lifecycle, which records where it came from.
    const lifecycle = await waitFor('the lifecycle to record the scheduled trigger', async () => {
      const st = await env.client.workflow.getHandle(lifecycleWorkflowId(model)).query<LifecycleStatus>('status');
      return st.decisions.some((d) => d.kind === 'trigger' && d.source === 'schedule') ? st : undefined;
    });
    expect(lifecycle.policy).toMatchObject({ promote: false, cooldownSeconds: 0 });

    expect(json(await mlops(['schedule', 'delete', '--schedule-id', scheduleId, '--json']))).toEqual({ scheduleId, deleted: true });
    expectOneError(await mlops(['schedule', 'describe', '--schedule-id', scheduleId]), /^error: no schedule with id/);
    await settleLifecycle(model);
  }, 240_000);

  test('retrain --wait prints the training the lifecycle started; status --model shows it', async () => {
    const model = `cli-retrain-${uid}`;
    const out = json<{ workflowId: string; trainingWorkflowId: string }>(await mlops(['retrain', '--model', model, '--reason', 'cli test', '--dedupe-key', `k-${uid}`, '--policy', 'policy.json', '--wait', '--json']));
    expect(out.workflowId).toBe(lifecycleWorkflowId(model));
    expect(out.trainingWorkflowId).toEqual(expect.any(String));

    const st = json<{ lifecycle: LifecycleStatus; monitoring: unknown }>(await mlops(['status', '--model', model, '--json']));
    expect(st.lifecycle.decisions).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'trigger', source: 'cli' }), expect.objectContaining({ kind: 'training-started', workflowId: out.trainingWorkflowId })]));
    expect(st.monitoring).toBeNull();

    // The same dedupe key again is dropped, and --wait says so with exit code 3.
    const dup = await mlops(['retrain', '--model', model, '--dedupe-key', `k-${uid}`, '--wait']);
    expect({ code: dup.code, stdout: dup.stdout }).toEqual({ code: 3, stdout: expect.stringMatching(/no training started: duplicate-dropped/) });

    const result = await env.client.workflow.getHandle(out.trainingWorkflowId).result();
    expect(result).toMatchObject({ model, status: 'registered' });
    const human = await mlops(['status', '--model', model]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^model ${model}: `));
    expect(human.stdout).toContain('last decisions:');
    expect(human.stdout).toContain('monitoring: not running');
  }, 240_000);

  test('retrain --wait reports each answer of the lifecycle: started, coalesced, duplicate, deferred', async () => {
    const held = `cli-held-${uid}`;
    // A training that pauses at its first step (its data does not exist) holds the lifecycle:
    // later requests can only join its follow-up, whatever the machine's speed.
    const missing = pathToFileURL(path.join(os.tmpdir(), `missing-${uid}.parquet`)).href;
    await fs.writeFile(path.join(workDir, 'held.json'), JSON.stringify({ ...LIGHT_POLICY, training: { ...LIGHT_TRAINING, dataset: { uris: [missing] } } }));
    const started = json<{ outcome: string; workflowId: string; trainingWorkflowId: string }>(await mlops(['retrain', '--model', held, '--dedupe-key', `a-${uid}`, '--policy', 'held.json', '--wait', '--json']));
    expect(started).toMatchObject({ outcome: 'started', trainingWorkflowId: expect.stringMatching(new RegExp(`^train-${held}-`)) });
    try {
      await waitFor('the training to pause', async () => ((await env.client.workflow.getHandle(started.trainingWorkflowId).query<PipelineStatus>('status')).state === 'awaiting-resume' ? true : undefined));
      const coalesced = await mlops(['retrain', '--model', held, '--dedupe-key', `b-${uid}`, '--wait']);
      expect({ code: coalesced.code, stdout: coalesced.stdout.trim() }).toEqual({ code: 0, stdout: `${held}: coalesced: a training runs (${started.trainingWorkflowId}); this request joins the one follow-up after it` });
      const duplicate = await mlops(['retrain', '--model', held, '--dedupe-key', `a-${uid}`, '--wait', '--json']);
      expect(duplicate.code).toBe(3);
      expect(JSON.parse(duplicate.stdout)).toMatchObject({ outcome: 'duplicate', dedupeKey: `a-${uid}` });
      // The server's record agrees: one training, one pending follow-up, one duplicate.
      const st = await env.client.workflow.getHandle(lifecycleWorkflowId(held)).query<LifecycleStatus>('status');
      expect({ trainings: st.counters.trainings, duplicates: st.counters.duplicates, pending: st.pending.map((t) => t.dedupeKey) }).toEqual({ trainings: 1, duplicates: 1, pending: [`b-${uid}`] });
    } finally {
      await env.client.workflow.getHandle(lifecycleWorkflowId(held)).terminate('test done').catch(() => undefined);
      await env.client.workflow.getHandle(started.trainingWorkflowId).terminate('test done').catch(() => undefined);
    }

    // A retrain without a policy for a model that has no lifecycle creates nothing.
    const ghost = `cli-ghost-${uid}`;
    expectOneError(await mlops(['retrain', '--model', ghost, '--wait']), new RegExp(`^error: no lifecycle for model ${ghost}: a trigger does not create one`));
    expectOneError(await mlops(['retrain', '--model', ghost]), /^error: no lifecycle for model/);
    expect(await env.client.workflow.getHandle(lifecycleWorkflowId(ghost)).describe().then(() => true, () => false)).toBe(false);

    const budgetless = `cli-nobudget-${uid}`;
    await fs.writeFile(path.join(workDir, 'nobudget.json'), JSON.stringify({ ...LIGHT_POLICY, dailyBudget: 0 }));
    const deferred = await mlops(['retrain', '--model', budgetless, '--policy', 'nobudget.json', '--wait']);
    expect({ code: deferred.code, stdout: deferred.stdout.trim() }).toEqual({ code: 3, stdout: `${budgetless}: no training started: deferred (daily budget used) until the budget is raised` });
    await env.client.workflow.getHandle(lifecycleWorkflowId(budgetless)).terminate('test done').catch(() => undefined);
  }, 240_000);
});

/** Lets a lifecycle's training finish, so teardown does not cut an activity off mid-write. */
async function settleLifecycle(model: string): Promise<void> {
  const st = await waitFor('the lifecycle to start its training', async () => {
    const s = await env.client.workflow.getHandle(lifecycleWorkflowId(model)).query<LifecycleStatus>('status');
    return s.decisions.some((d) => d.kind === 'training-started') ? s : undefined;
  });
  const started = st.decisions.find((d) => d.kind === 'training-started');
  if (started?.workflowId) await env.client.workflow.getHandle(started.workflowId).result().catch(() => undefined);
}
