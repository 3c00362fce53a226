import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { defaultPayloadConverter } from '@temporalio/common';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { signalLifecycle } from '../../client/lifecycle';
import { createLogger } from '../../infra/log';
import { compiledEntry } from '../../infra/entry';
import { PROJECT_ROOT } from '../../infra/paths';
import { startWebhookServer, type RunningWebhook } from '../../workers/triggers/webhook';
import type { WorkerRuntime } from '../../workers/runtime';
import { DATASET_WATCHER, TASK_QUEUES, lifecycleWorkflowId, watcherWorkflowId } from '../../workflows/contracts/names';
import { lifecycleStatusQuery, pauseSignal, resumeMonitoringSignal, type LifecyclePolicyInput, type LifecycleStatus } from '../../workflows/contracts/lifecycle';
import { watcherStatusQuery, type DatasetWatcherInput } from '../../workflows/dataset-watcher';
import type { TrainingSpec } from '../../workflows/contracts/training-spec';
import { createTemporalEnv, independentS3, openTestRuntime, testServices } from '../helpers/real';
import { errorLines, runEntry } from '../helpers/run-entry';
import { waitFor } from '../helpers/wait';
import { checkMetrics } from '../helpers/promtool';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * The three triggers besides the Temporal CLI — Alertmanager webhook, Temporal Schedule,
 * dataset watcher — each driven the way a user would, against the real Temporal dev server,
 * MinIO and the real lifecycle workflow. Each must start a retrain: a continuousTraining child
 * of `model/<name>`. Only the control queue is served, so the child starts (and shows in the
 * lifecycle's status) but its CPU steps wait; the lifecycle is terminated at the end of each test.
 */

const exec = promisify(execFile);
const TOKEN = 'triggers-test-token-0123456789';

let env: TestWorkflowEnvironment;
let client: Client;
let runtime: WorkerRuntime;
const bucket = `trig-${randomUUID().slice(0, 8)}`;

const cheapPolicy: LifecyclePolicyInput = {
  cooldownSeconds: 0,
  promote: false,
  monitoring: { enabled: false },
  training: { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 2000, hyperparameters: { rounds: 5 }, resources: { gpu: 0 } },
};

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket)]);
  client = env.client;
  await workflowBundle();
});

afterAll(async () => {
  await runtime?.close();
  await env?.teardown();
});

function lifecycle(model: string): Promise<LifecycleStatus> {
  return client.workflow.getHandle(lifecycleWorkflowId(model)).query(lifecycleStatusQuery);
}

/** The lifecycle once it runs a training child, and that child's description. */
async function trainingStarted(model: string, source: string): Promise<{ status: LifecycleStatus; childId: string }> {
  const status = await waitFor(`a training of ${model} started by ${source}`, async () => {
    const s = await lifecycle(model);
    return s.running?.kind === 'training' && s.decisions.some((d) => d.kind === 'training-started' && d.source === source) ? s : undefined;
  });
  const childId = status.running!.workflowId;
  const child = await client.workflow.getHandle(childId).describe();
  expect(child.type).toBe('continuousTraining');
  expect(child.parentExecution?.workflowId).toBe(lifecycleWorkflowId(model));
  return { status, childId };
}

/** The spec a continuousTraining run was started with, from its first history event. */
async function childSpec(workflowId: string): Promise<TrainingSpec> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
  return defaultPayloadConverter.fromPayload(payload);
}

async function terminate(workflowId: string): Promise<void> {
  await client.workflow
    .getHandle(workflowId)
    .terminate('test over')
    .catch(() => undefined);
}

async function exists(workflowId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

const controlOnly = { queues: [TASK_QUEUES.control] };

describe('Alertmanager webhook', () => {
  let hook: RunningWebhook;
  const model = 'wh-drift';
  const post = (p: string, body: unknown, token: string | null = TOKEN) =>
    fetch(`${hook.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  const alert = (over: Record<string, unknown>) => ({
    status: 'firing',
    labels: { alertname: 'ModelFeatureDrift', severity: 'page', feature: 'distance', model },
    annotations: { summary: 'PSI of distance is 0.31 (act at 0.2)', psi: '0.31' },
    startsAt: '2026-11-23T05:00:00Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus:9090/graph?g0.expr=mlops_psi',
    fingerprint: 'a1b2c3d4e5f60718',
    ...over,
  });
  const payload = {
    version: '4',
    groupKey: '{}:{alertname="ModelFeatureDrift"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'mlops-retrain',
    groupLabels: { alertname: 'ModelFeatureDrift' },
    commonLabels: { alertname: 'ModelFeatureDrift', model },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      alert({}),
      // No `model` label of its own: commonLabels names the model.
      alert({ labels: { alertname: 'ModelAucDrop', severity: 'page' }, annotations: { summary: 'AUC fell by 0.07' }, fingerprint: '0f0e0d0c0b0a0908' }),
      alert({ status: 'resolved', fingerprint: '1111111111111111', endsAt: '2026-11-23T05:10:00Z' }),
      alert({ labels: { alertname: 'ModelFeatureDrift', model: 'Not A Model' }, fingerprint: '2222222222222222' }),
    ],
  };

  beforeAll(async () => {
    hook = await startWebhookServer({ client, token: TOKEN, log: createLogger('test-webhook') });
  });
  afterAll(async () => {
    await hook?.close();
  });

  test('firing alerts become retrain requests that start one training, answered by the lifecycle; resolved and unnamed ones are reported, not sent', async () => {
    await withTestWorkers(
      env,
      runtime,
      async () => {
        try {
          await signalLifecycle(client, model, 'setPolicy', cheapPolicy, cheapPolicy);
          const res = await post('/v1/alertmanager', payload);
          expect(res.status).toBe(200);
          const body = (await res.json()) as { accepted: number; ignored: number; rejected: number; alerts: Array<{ outcome: string; workflowId?: string; model?: string; reason?: string; dedupeKey?: string; retrain?: { outcome: string; workflowId?: string; runningWorkflowId?: string } }> };
          expect(body).toMatchObject({ accepted: 2, ignored: 1, rejected: 1 });
          expect(body.alerts.map((a) => a.outcome)).toEqual(['accepted', 'accepted', 'ignored', 'rejected']);
          // The Update's answers: the first alert started the training, the second joined its follow-up.
          expect(body.alerts[0]!.retrain).toEqual({ outcome: 'started', workflowId: expect.stringMatching(new RegExp(`^train-${model}-`)) });
          expect(body.alerts[1]!.retrain).toEqual({ outcome: 'coalesced', runningWorkflowId: body.alerts[0]!.retrain!.workflowId });
          expect(body.alerts[0]).toMatchObject({ model, workflowId: `model/${model}`, dedupeKey: 'alertmanager:a1b2c3d4e5f60718:2026-11-23T05:00:00Z' });
          expect(body.alerts[1]).toMatchObject({ model, workflowId: `model/${model}` });
          expect(body.alerts[3]!.reason).toMatch(/model="Not A Model"/);

          const { status } = await trainingStarted(model, 'webhook');
          const s = await waitFor('both alerts at the lifecycle', async () => {
            const x = await lifecycle(model);
            return x.counters.triggers >= 2 ? x : undefined;
          });
          expect(s.counters.trainings).toBe(1);
          const started = status.decisions.find((d) => d.kind === 'training-started')!;
          expect(started.figures).toMatchObject({ alertname: 'ModelFeatureDrift', fingerprint: 'a1b2c3d4e5f60718', labels: { feature: 'distance' }, annotations: { psi: '0.31' } });
          const triggers = [...(s.running?.triggers ?? []), ...s.pending];
          expect(triggers.map((t) => t.reason)).toEqual(expect.arrayContaining(['ModelFeatureDrift: PSI of distance is 0.31 (act at 0.2)', 'ModelAucDrop: AUC fell by 0.07']));

          // Alertmanager re-sends a group until it gets a 2xx, and every group_interval: the
          // same alerts again are duplicates, not new trainings.
          const repeat = await post('/v1/alertmanager', payload);
          expect(repeat.status).toBe(200);
          const repeated = (await repeat.json()) as typeof body;
          expect(repeated.alerts.slice(0, 2).map((a) => a.retrain?.outcome)).toEqual(['duplicate', 'duplicate']);
          const again = await waitFor('the repeats dropped', async () => {
            const x = await lifecycle(model);
            return x.counters.duplicates >= 2 ? x : undefined;
          });
          expect(again.counters.trainings).toBe(1);

          // The plain JSON form.
          const plain = await post('/v1/retrain', { model, reason: 'nightly check failed', dedupeKey: 'ops-42', figures: { auc: 0.61 } });
          expect(plain.status).toBe(200);
          const plainBody = (await plain.json()) as { retrain?: { outcome: string } };
          expect(plainBody).toMatchObject({ model, outcome: 'accepted', workflowId: `model/${model}`, dedupeKey: 'ops-42' });
          expect(['coalesced', 'deferred']).toContain(plainBody.retrain?.outcome);
          await waitFor('the plain retrain at the lifecycle', async () => (await lifecycle(model)).decisions.some((d) => d.source === 'webhook' && /nightly check failed/.test(d.detail)) || undefined);
          expect((await lifecycle(model)).counters.trainings).toBe(1);
        } finally {
          await terminate(lifecycleWorkflowId(model));
        }
      },
      controlOnly,
    );
  });

  test('bad or missing token → 401 and nothing signalled; bad bodies → 400 naming the field, 413, 404, 405', async () => {
    const other = 'wh-unauthorized';
    const forOther = { ...payload, commonLabels: { model: other }, alerts: [alert({ labels: { alertname: 'X', model: other } })] };
    const wrong = await post('/v1/alertmanager', forOther, 'not-the-token-at-all-0000');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await wrong.json()) as { error: string }).error).toMatch(/wrong bearer token/);
    expect((await post('/v1/alertmanager', forOther, null)).status).toBe(401);
    expect((await post('/v1/retrain', { model: other }, 'nope')).status).toBe(401);
    expect(await exists(lifecycleWorkflowId(other))).toBe(false);

    const bad = await post('/v1/alertmanager', { ...forOther, alerts: [alert({ status: 'pending' })] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/alerts\.0\.status/);
    const noVersion = await post('/v1/alertmanager', { ...forOther, version: '3' });
    expect(((await noVersion.json()) as { error: string }).error).toMatch(/version: must be "4"/);
    const badModel = await post('/v1/retrain', { model: 'Bad Name' });
    expect(badModel.status).toBe(400);
    expect(((await badModel.json()) as { error: string }).error).toMatch(/^invalid retrain request: model: must be 1–63 lowercase/);
    const extra = await post('/v1/retrain', { model: other, priority: 'high' });
    expect(extra.status).toBe(400);
    expect(((await extra.json()) as { error: string }).error).toMatch(/priority/);
    expect((await post('/v1/retrain', '{not json')).status).toBe(400);
    expect((await post('/v1/alertmanager', { ...forOther, padding: 'x'.repeat(2 * 1024 * 1024) })).status).toBe(413);
    expect((await fetch(`${hook.url}/v1/alertmanager`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(405);
    expect((await post('/v1/nothing', {})).status).toBe(404);
    const health = await fetch(`${hook.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await exists(lifecycleWorkflowId(other))).toBe(false);
  });

  test('an alert or a retrain for a model without a lifecycle starts nothing: refused with the reason, not retried', async () => {
    const ghost = `wh-ghost-${randomUUID().slice(0, 6)}`;
    await withTestWorkers(
      env,
      runtime,
      async () => {
        const res = await post('/v1/alertmanager', { ...payload, commonLabels: { model: ghost }, alerts: [alert({ labels: { alertname: 'ModelFeatureDrift', model: ghost } })] });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { accepted: number; rejected: number; alerts: Array<{ outcome: string; reason?: string }> };
        expect(body).toMatchObject({ accepted: 0, rejected: 1 });
        expect(body.alerts[0]).toMatchObject({ outcome: 'rejected', reason: expect.stringMatching(new RegExp(`^no lifecycle for model ${ghost}: a trigger does not create one`)) });
        const plain = await post('/v1/retrain', { model: ghost, reason: 'typo in a script' });
        expect(plain.status).toBe(404);
        expect(((await plain.json()) as { error: string }).error).toMatch(/^no lifecycle for model/);
        // The server's record: no lifecycle, no training.
        expect(await exists(lifecycleWorkflowId(ghost))).toBe(false);
        // Counted where an operator looks, in a lint-clean exposition.
        const metrics = await (await fetch(`${hook.url}/metrics`)).text();
        expect(metrics).toMatch(/^mlops_webhook_items_total\{source="alertmanager",outcome="rejected"\} [1-9]/m);
        expect(metrics).toMatch(/^mlops_webhook_requests_total\{path="\/v1\/retrain",code="404"\} [1-9]/m);
        expect(await checkMetrics(metrics)).toEqual({ code: 0, output: '' });
      },
      controlOnly,
    );
  });

  test('npm run webhook: the entry point serves the same API and stops on SIGTERM', async () => {
    const model = 'wh-entry';
    const { PATH, HOME } = process.env;
    const child = spawn(process.execPath, [compiledEntry('workers/webhook.ts')], {
      cwd: PROJECT_ROOT,
      env: { PATH, HOME, TEMPORAL_ADDRESS: env.address, MLOPS_WEBHOOK_TOKEN: TOKEN, MLOPS_WEBHOOK_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await waitFor('the webhook to listen', async () => /webhook listening on (http:\/\/\S+)/.exec(stderr)?.[1], 30_000);
      await withTestWorkers(
        env,
        runtime,
        async () => {
          try {
            await signalLifecycle(client, model, 'setPolicy', cheapPolicy, cheapPolicy);
            const res = await fetch(`${url}/v1/retrain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ model, reason: 'from a script' }) });
            expect(res.status).toBe(200);
            await trainingStarted(model, 'webhook');
          } finally {
            await terminate(lifecycleWorkflowId(model));
          }
        },
        controlOnly,
      );
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  test('npm run webhook refuses to start without MLOPS_WEBHOOK_TOKEN (exit 2, one line)', async () => {
    const { PATH, HOME } = process.env;
    const r = await runEntry('workers/webhook.ts', [], { PATH, HOME, TEMPORAL_ADDRESS: env.address });
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^error: MLOPS_WEBHOOK_TOKEN is not set: the webhook refuses to start without a token/)]);
    const short = await runEntry('workers/webhook.ts', [], { PATH, HOME, TEMPORAL_ADDRESS: env.address, MLOPS_WEBHOOK_TOKEN: 'short' });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/MLOPS_WEBHOOK_TOKEN: must be at least 16 characters/);
  });
});

describe('Temporal Schedule', () => {
  test('temporal schedule create … --type scheduledRetrain, then trigger → a retrain with source "schedule"', async () => {
    const model = 'sched-delay';
    const temporal = testServices.temporalCli();
    const address = ['--address', env.address];
    await withTestWorkers(
      env,
      runtime,
      async () => {
        try {
          // The README's command, with this test's names and a cheap policy for the lifecycle it starts.
          await exec(temporal, [
            'schedule', 'create', '--schedule-id', `retrain-${model}`, '--interval', '24h', '--overlap-policy', 'Skip',
            '--workflow-id', `retrain-${model}`, '--task-queue', 'mlops-control', '--type', 'scheduledRetrain',
            '--input', JSON.stringify({ model, policy: cheapPolicy }), ...address,
          ]);
          await exec(temporal, ['schedule', 'trigger', '--schedule-id', `retrain-${model}`, ...address]);

          const { status } = await trainingStarted(model, 'schedule');
          const trigger = status.running!.triggers[0]!;
          expect(trigger).toMatchObject({ source: 'schedule', dedupeKey: expect.stringMatching(new RegExp(`^schedule:retrain-${model}-`)) });
          // The policy from the schedule's input made the lifecycle (it started it).
          expect(status.policy.promote).toBe(false);
          expect(status.policy.training).toMatchObject({ sampleRows: 2000 });

          const { stdout } = await exec(temporal, ['workflow', 'list', ...address, '--query', `WorkflowType='scheduledRetrain' AND WorkflowId STARTS_WITH 'retrain-${model}'`, '-o', 'json']);
          const runs = JSON.parse(stdout) as Array<{ execution: { workflowId: string } }>;
          expect(runs).toHaveLength(1);
          const result = await client.workflow.getHandle(runs[0]!.execution.workflowId).result();
          expect(result).toMatchObject({ model, lifecycleWorkflowId: `model/${model}`, action: 'started', dedupeKey: trigger.dedupeKey });

          // A bad input fails that firing at once, naming the field.
          await exec(temporal, ['schedule', 'create', '--schedule-id', 'retrain-bad', '--interval', '24h', '--workflow-id', 'retrain-bad', '--task-queue', 'mlops-control', '--type', 'scheduledRetrain', '--input', '{"model": "Bad Name"}', ...address]);
          await exec(temporal, ['schedule', 'trigger', '--schedule-id', 'retrain-bad', ...address]);
          const badId = await waitFor('the bad firing', async () => {
            const { stdout: out } = await exec(temporal, ['workflow', 'list', ...address, '--query', "WorkflowType='scheduledRetrain' AND WorkflowId STARTS_WITH 'retrain-bad'", '-o', 'json']);
            const r = out.trim() ? (JSON.parse(out) as Array<{ execution: { workflowId: string } }>) : [];
            return r[0]?.execution.workflowId;
          });
          await expect(client.workflow.getHandle(badId).result()).rejects.toMatchObject({ cause: { type: 'InvalidInput', message: expect.stringMatching(/model: must be 1–63 lowercase/) } });
        } finally {
          for (const id of [`retrain-${model}`, 'retrain-bad']) await client.schedule.getHandle(id).delete().catch(() => undefined);
          await terminate(lifecycleWorkflowId(model));
        }
      },
      controlOnly,
    );
  });
});

describe('workflow-side triggers without a policy', () => {
  test('a scheduled retrain or a data watcher for a model with no lifecycle starts nothing and says why', async () => {
    const model = `nolife-${randomUUID().slice(0, 8)}`;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nolife-'));
    await fs.writeFile(path.join(dir, 'part-0.csv'), 'a,b\n1,2\n');
    const watcherId = watcherWorkflowId(model);
    await withTestWorkers(
      env,
      runtime,
      async () => {
        try {
          const firing = await client.workflow.start('scheduledRetrain', { taskQueue: TASK_QUEUES.control, workflowId: `retrain-${model}-${Date.now()}`, args: [{ model }] });
          await expect(firing.result()).rejects.toMatchObject({ cause: { type: 'NoLifecycle', message: expect.stringContaining(`no lifecycle for model ${model}`) } });
          await client.workflow.start(DATASET_WATCHER, { workflowId: watcherId, taskQueue: TASK_QUEUES.control, args: [{ model, prefix: pathToFileURL(dir).href + '/', periodSeconds: 1, minAgeSeconds: 0 }] });
          // The watcher keeps the file for later (its cursor does not move) and shows the reason.
          const w = await waitFor('the watcher to report the missing lifecycle', async () => {
            const s = await client.workflow.getHandle(watcherId).query(watcherStatusQuery);
            return s.lastError?.includes(`no lifecycle for model ${model}`) ? s : undefined;
          });
          expect(w.signals).toBe(0);
          expect(w.cursor).toBeUndefined();
          await expect(client.workflow.getHandle(lifecycleWorkflowId(model)).describe()).rejects.toMatchObject({ name: 'WorkflowNotFoundError' });
        } finally {
          await terminate(watcherId);
          await fs.rm(dir, { recursive: true, force: true });
        }
      },
      controlOnly,
    );
  });
});

describe('dataset watcher', () => {
  test('new objects under an S3 prefix → newData → a retrain on them; later objects are announced once, also across a restart', async () => {
    const model = 'watch-delay';
    const dataBucket = `landing-${randomUUID().slice(0, 8)}`;
    const s3 = independentS3();
    await s3.makeBucket(dataBucket);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'watch-'));
    const file = path.join(dir, 'part.parquet');
    await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) LIMIT 500) TO ${literal(file)} (FORMAT parquet)`));
    const put = async (key: string) => {
      await s3.fPutObject(dataBucket, key, file);
      return `s3://${dataBucket}/${key}`;
    };
    const first = await put('flights/2001-02/part-0.parquet');
    const second = await put('flights/2001-02/part-1.parquet');
    await s3.putObject(dataBucket, 'flights/2001-02/_SUCCESS', Buffer.from(''));
    await s3.putObject(dataBucket, 'other/ignored.parquet', Buffer.from('x'));

    const input: DatasetWatcherInput = { model, prefix: `s3://${dataBucket}/flights/`, periodSeconds: 1 };
    const watcherId = watcherWorkflowId(model);
    const watcher = () => client.workflow.getHandle(watcherId).query(watcherStatusQuery);
    const start = () => client.workflow.start(DATASET_WATCHER, { workflowId: watcherId, taskQueue: TASK_QUEUES.control, args: [input] });

    await withTestWorkers(
      env,
      runtime,
      async () => {
        try {
          await signalLifecycle(client, model, 'setPolicy', cheapPolicy, cheapPolicy);
          await start();
          const { status, childId } = await trainingStarted(model, 'new-data');
          expect(status.dataUris).toEqual([first, second]);
          expect((await childSpec(childId)).dataset).toEqual({ uris: [first, second] });
          const w1 = await watcher();
          expect(w1).toMatchObject({ signals: 1, files: 2 });
          expect(w1.cursor?.uris).toContain(second);

          const third = await put('flights/2001-03/part-0.parquet');
          const afterThird = await waitFor('the third object announced', async () => {
            const s = await lifecycle(model);
            return s.dataUris.includes(third) ? s : undefined;
          });
          expect(afterThird.dataUris).toEqual([first, second, third]);
          expect(afterThird.decisions.filter((d) => d.kind === 'new-data')).toHaveLength(2);
          // The first training still runs: the new data waits for the follow-up, it does not start a second one alongside.
          expect(afterThird.counters.trainings).toBe(1);
          expect((await watcher()).signals).toBe(2);

          // Restart: a new watcher (same id, same input) picks up the saved cursor.
          await client.workflow.getHandle(watcherId).terminate('restart');
          await start();
          await waitFor('the restarted watcher to poll twice', async () => ((await watcher()).polls >= 2 ? true : undefined));
          const restarted = await watcher();
          expect(restarted).toMatchObject({ signals: 0, files: 0 });
          expect(restarted.cursor?.uris).toContain(third);
          expect((await lifecycle(model)).decisions.filter((d) => d.kind === 'new-data' || d.kind === 'duplicate-dropped')).toHaveLength(2);
          const fourth = await put('flights/2001-03/part-1.parquet');
          await waitFor('the fourth object announced', async () => ((await lifecycle(model)).dataUris.includes(fourth) ? true : undefined));
          expect((await watcher()).recent).toEqual([expect.objectContaining({ uris: 1, first: fourth, action: 'signalled' })]);
        } finally {
          await terminate(watcherId);
          await terminate(lifecycleWorkflowId(model));
          await fs.rm(dir, { recursive: true, force: true });
        }
      },
      controlOnly,
    );
  });

  test('a file:// folder, across continue-as-new: each file announced once; pause and resume', async () => {
    const model = 'watch-local';
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'watch-local-'));
    const touch = async (name: string) => {
      await fs.writeFile(path.join(dir, name), name);
      return `file://${path.join(dir, name)}`;
    };
    const a = await touch('a.csv');
    await touch('notes.txt');
    const watcherId = watcherWorkflowId(model);
    const watcher = () => client.workflow.getHandle(watcherId).query(watcherStatusQuery);
    await withTestWorkers(
      env,
      runtime,
      async () => {
        try {
          await signalLifecycle(client, model, 'setPolicy', cheapPolicy, cheapPolicy);
          const input: DatasetWatcherInput = { model, prefix: `file://${dir}/`, periodSeconds: 1, pollsPerRun: 2 };
          const handle = await client.workflow.start(DATASET_WATCHER, { workflowId: watcherId, taskQueue: TASK_QUEUES.control, args: [input] });
          const { childId } = await trainingStarted(model, 'new-data');
          expect((await childSpec(childId)).dataset).toEqual({ uris: [a] });
          await waitFor('two continue-as-new', async () => ((await watcher()).generation >= 3 ? true : undefined));
          expect(await watcher()).toMatchObject({ signals: 1, files: 1 });

          await handle.signal(pauseSignal);
          await waitFor('paused', async () => (await watcher()).paused || undefined);
          const polls = (await watcher()).polls;
          const b = await touch('b.parquet');
          await new Promise((r) => setTimeout(r, 2500));
          expect((await watcher()).polls).toBeLessThanOrEqual(polls + 1);
          expect((await lifecycle(model)).dataUris).toEqual([a]);
          await handle.signal(resumeMonitoringSignal);
          await waitFor('b announced after resume', async () => ((await lifecycle(model)).dataUris.includes(b) ? true : undefined));
          expect(await watcher()).toMatchObject({ signals: 2, files: 2 });
        } finally {
          await terminate(watcherId);
          await terminate(lifecycleWorkflowId(model));
          await fs.rm(dir, { recursive: true, force: true });
        }
      },
      controlOnly,
    );
  });

  test('a prefix outside MLOPS_DATA_ROOTS fails the watcher at once, naming the variable', async () => {
    await withTestWorkers(
      env,
      runtime,
      async () => {
        const handle = await client.workflow.start(DATASET_WATCHER, { workflowId: `watch-data/outside-${randomUUID().slice(0, 6)}`, taskQueue: TASK_QUEUES.control, args: [{ model: 'outside', prefix: 'file:///etc/' }] });
        await expect(handle.result()).rejects.toMatchObject({ cause: { type: 'InvalidInput', message: expect.stringMatching(/outside the allowed data folders \(MLOPS_DATA_ROOTS/) } });
        const bad = await client.workflow.start(DATASET_WATCHER, { workflowId: `watch-data/bad-${randomUUID().slice(0, 6)}`, taskQueue: TASK_QUEUES.control, args: [{ model: 'bad', prefix: 'http://example.com/data/' }] });
        await expect(bad.result()).rejects.toMatchObject({ cause: { type: 'InvalidInput', message: expect.stringMatching(/prefix: must be an s3:\/\/bucket\/prefix\/ or file:\/\/\/absolute\/folder\/ URI/) } });
      },
      controlOnly,
    );
  });
});
