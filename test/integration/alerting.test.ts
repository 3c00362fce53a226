import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { parse, stringify } from 'yaml';
import { signalLifecycle } from '../../client/lifecycle';
import { ALERTMANAGER, PROMETHEUS, ensureDebianTool } from '../../infra/debian-tools';
import { registerModelVersion, upsertModel, upsertMonitoringCheck } from '../../infra/db/repositories';
import { createLogger } from '../../infra/log';
import { compiledEntry } from '../../infra/entry';
import { PROJECT_ROOT } from '../../infra/paths';
import { startWorkerMetrics, type RunningWorkerMetrics } from '../../workers/metrics-server';
import type { WorkerRuntime } from '../../workers/runtime';
import { startWebhookServer, type RunningWebhook } from '../../workers/triggers/webhook';
import { TASK_QUEUES, lifecycleWorkflowId } from '../../workflows/contracts/names';
import { lifecycleStatusQuery, type LifecyclePolicyInput, type LifecycleStatus } from '../../workflows/contracts/lifecycle';
import { createTemporalEnv, openTestRuntime } from '../helpers/real';
import { waitFor } from '../helpers/wait';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * The operator's path, with the real binaries (Debian's prometheus and prometheus-alertmanager):
 * a drift figure in the metadata store → a control worker's /metrics → the shipped rule fires
 * in Prometheus → the shipped Alertmanager route → our webhook → exactly one retrain of that
 * model, and Alertmanager's repeated notification is a duplicate at the lifecycle.
 */

jest.setTimeout(180_000);

const TOKEN = 'alerting-test-token-0123456789';
const cheapPolicy: LifecyclePolicyInput = {
  cooldownSeconds: 0,
  promote: false,
  monitoring: { enabled: false },
  training: { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 2000, hyperparameters: { rounds: 5 }, resources: { gpu: 0 } },
};

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let dir: string;
const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function run(binary: string, args: string[], name: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL') process.stderr.write(`${name} exited (${code ?? signal}):\n${log}\n`);
  });
  children.push(child);
  return child;
}

/** Debian's Alertmanager and Prometheus with the shipped configuration and rules, pointed at `webhookUrl` and scraping `metricsUrl`, with short intervals. */
async function startAlerting(webhookUrl: string, metricsUrl: string): Promise<{ promPort: number; amPort: number; stop: () => Promise<void> }> {
  const shippedAm = parse(await fs.readFile(path.join(PROJECT_ROOT, 'infra/prometheus/alertmanager.yml'), 'utf8')) as {
    route: Record<string, unknown>;
    receivers: Array<{ name: string; webhook_configs?: Array<{ url: string; http_config: { authorization: { credentials: string } } }> }>;
  };
  Object.assign(shippedAm.route, { group_wait: '1s', group_interval: '2s', repeat_interval: '3s' });
  for (const r of shippedAm.receivers) {
    for (const w of r.webhook_configs ?? []) {
      w.url = webhookUrl;
      w.http_config.authorization.credentials = TOKEN;
    }
  }
  const sub = await fs.mkdtemp(path.join(dir, 'stack-'));
  const amPort = await freePort();
  await fs.writeFile(path.join(sub, 'alertmanager.yml'), stringify(shippedAm));
  const am = run(ensureDebianTool(ALERTMANAGER, createLogger('test')), [`--config.file=${path.join(sub, 'alertmanager.yml')}`, `--storage.path=${path.join(sub, 'am')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address='], 'alertmanager');

  const shippedProm = parse(await fs.readFile(path.join(PROJECT_ROOT, 'infra/prometheus/prometheus.yml'), 'utf8')) as Record<string, unknown>;
  const promConfig = {
    ...shippedProm,
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [path.join(PROJECT_ROOT, 'infra/prometheus/mlops-rules.yml')],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
    scrape_configs: [{ job_name: 'mlops-workers', static_configs: [{ targets: [new URL(metricsUrl).host] }] }],
  };
  const promPort = await freePort();
  await fs.writeFile(path.join(sub, 'prometheus.yml'), stringify(promConfig));
  const prom = run(ensureDebianTool(PROMETHEUS, createLogger('test')), [`--config.file=${path.join(sub, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(sub, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--rules.alert.resend-delay=1s'], 'prometheus');
  return { promPort, amPort, stop: () => Promise.all([am, prom].map(stopChild)).then(() => undefined) };
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await exited;
}

/** A drift figure as monitoring writes it, for a model with one registered version. */
async function seedDrift(name: string, psi: number): Promise<void> {
  const m = await upsertModel(runtime.db, name);
  const mv = await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: `alerting/${name}`, status: 'registered', metrics: {}, onnxArtifactId: null, inputSignature: [], outputSignature: [] });
  const end = new Date();
  await upsertMonitoringCheck(runtime.db, {
    modelId: m.id,
    modelVersionId: mv.id,
    kind: 'check',
    windowStart: new Date(end.getTime() - 3600_000),
    windowEnd: end,
    figures: { model: name, version: mv.version, level: psi >= 0.2 ? 'act' : 'ok', rows: 1000, labeledRows: 0, breach: psi >= 0.2, reasons: [], features: { distance: { kind: 'numeric', psi, js: psi / 3 } } },
    breach: psi >= 0.2,
  });
}

/** A counter summed over its series from a Prometheus text exposition. */
function counterSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The alert's retrain at the lifecycle, then Alertmanager's next notification of it dropped as a duplicate: one training. */
async function expectOneRetrain(model: string): Promise<LifecycleStatus> {
  const lifecycle = () => env.client.workflow.getHandle(lifecycleWorkflowId(model)).query(lifecycleStatusQuery) as Promise<LifecycleStatus>;
  const started = await waitFor('the retrain at the lifecycle', async () => {
    const s = await lifecycle();
    return s.decisions.some((d) => d.kind === 'training-started') ? s : undefined;
  }, 90_000);
  expect(started.decisions.find((d) => d.kind === 'training-started')!.figures).toMatchObject({ alertname: 'ModelFeatureDrift', labels: { model, action: 'retrain' } });
  const repeated = await waitFor('a resent notification dropped as a duplicate', async () => {
    const s = await lifecycle();
    return s.counters.duplicates >= 1 ? s : undefined;
  }, 90_000);
  expect(repeated.counters.trainings).toBe(1);
  expect(repeated.decisions.filter((d) => d.kind === 'training-started')).toHaveLength(1);
  return repeated;
}

/** Runs `fn` with the model's lifecycle started with the cheap policy, and terminates it after. */
async function withLifecycle(model: string, fn: () => Promise<void>): Promise<void> {
  await withTestWorkers(
    env,
    runtime,
    async () => {
      try {
        await signalLifecycle(env.client, model, 'setPolicy', cheapPolicy, cheapPolicy);
        await fn();
      } finally {
        await env.client.workflow
          .getHandle(lifecycleWorkflowId(model))
          .terminate('test over')
          .catch(() => undefined);
      }
    },
    { queues: [TASK_QUEUES.control] },
  );
}

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`alert-${randomUUID().slice(0, 8)}`)]);
  await workflowBundle();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'alerting-'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await runtime?.close();
  await env?.teardown();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

test('drift in the store → the shipped rule fires in Prometheus → Alertmanager → webhook → one retrain; the repeat is a duplicate', async () => {
  const model = `alerted-${randomUUID().slice(0, 6)}`;
  const quiet = `quiet-${randomUUID().slice(0, 6)}`;
  // The figures monitoring wrote: one model drifted on distance, another did not.
  await seedDrift(model, 0.35);
  await seedDrift(quiet, 0.04);

  let metrics: RunningWorkerMetrics | undefined;
  let hook: RunningWebhook | undefined;
  let stack: Awaited<ReturnType<typeof startAlerting>> | undefined;
  try {
    metrics = await startWorkerMetrics({ db: runtime.db, log: createLogger('test-metrics'), host: '127.0.0.1', port: 0, storeFigures: true, queues: [TASK_QUEUES.control] });
    hook = await startWebhookServer({ client: env.client, token: TOKEN, log: createLogger('test-webhook') });

    stack = await startAlerting(`${hook.url}/v1/alertmanager`, metrics.url);
    const { promPort } = stack;

    await withLifecycle(model, async () => {
      // Prometheus's own record: the rule fires for the drifted model only.
      const firing = await waitFor('ModelFeatureDrift firing in Prometheus', async () => {
        const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`).catch(() => undefined);
        if (!res?.ok) return undefined;
        const alerts = ((await res.json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } }).data.alerts;
        const mine = alerts.filter((a) => a.labels.alertname === 'ModelFeatureDrift' && a.state === 'firing');
        return mine.length ? mine : undefined;
      }, 90_000);
      expect(firing.map((a) => a.labels.model)).toEqual([model]);
      expect(firing[0]!.labels).toMatchObject({ action: 'retrain', version: '1' });
      // Alertmanager notifies again after repeat_interval: the same alert is a duplicate, not a second training.
      await expectOneRetrain(model);
      await expect(env.client.workflow.getHandle(lifecycleWorkflowId(quiet)).describe()).rejects.toMatchObject({ name: 'WorkflowNotFoundError' });
      const hookMetrics = await (await fetch(`${hook!.url}/metrics`)).text();
      expect(hookMetrics).toMatch(/^mlops_retrain_decisions_total\{outcome="started"\} 1$/m);
      expect(hookMetrics).toMatch(/^mlops_retrain_decisions_total\{outcome="duplicate"\} [1-9]/m);
    });
  } finally {
    await stack?.stop();
    await hook?.close();
    await metrics?.close();
  }
});

test('the webhook killed while Alertmanager notifies, restarted while it retries: one retrain, the resends are duplicates', async () => {
  const model = `restarted-${randomUUID().slice(0, 6)}`;
  await seedDrift(model, 0.4);
  const port = await freePort();
  const hookUrl = `http://127.0.0.1:${port}`;
  // The webhook as operators run it (`npm run webhook`), so a kill -9 is a real crash.
  const startHook = async (): Promise<ChildProcess> => {
    const child = run(
      process.execPath,
      [compiledEntry('workers/webhook.ts'), '--port', String(port)],
      'webhook',
      { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default', MLOPS_WEBHOOK_TOKEN: TOKEN, MLOPS_LOG_LEVEL: 'WARN' },
    );
    await waitFor('the webhook to listen', async () => ((await fetch(`${hookUrl}/metrics`).catch(() => undefined))?.ok ? true : undefined), 60_000, 50);
    return child;
  };
  const amMetrics = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  let metrics: RunningWorkerMetrics | undefined;
  let stack: Awaited<ReturnType<typeof startAlerting>> | undefined;
  try {
    metrics = await startWorkerMetrics({ db: runtime.db, log: createLogger('test-metrics'), host: '127.0.0.1', port: 0, storeFigures: true, queues: [TASK_QUEUES.control] });
    await withLifecycle(model, async () => {
      const first = await startHook();
      const killed = new Promise((r) => first.once('exit', r));
      process.kill(first.pid!, 'SIGKILL');
      await killed;
      stack = await startAlerting(`${hookUrl}/v1/alertmanager`, metrics!.url);
      // Alertmanager's own record: its requests to the dead webhook fail and it keeps retrying.
      await waitFor('Alertmanager retrying the dead webhook', async () => {
        const text = await amMetrics(stack!.amPort).catch(() => '');
        return counterSum(text, 'alertmanager_notification_requests_failed_total', { integration: 'webhook' }) >= 2 ? true : undefined;
      }, 90_000);
      expect(((await env.client.workflow.getHandle(lifecycleWorkflowId(model)).query(lifecycleStatusQuery)) as LifecycleStatus).counters.trainings).toBe(0);
      await startHook();
      await expectOneRetrain(model);
      // And Alertmanager delivered once the webhook was back.
      const text = await amMetrics(stack.amPort);
      expect(counterSum(text, 'alertmanager_notification_requests_total', { integration: 'webhook' })).toBeGreaterThan(counterSum(text, 'alertmanager_notification_requests_failed_total', { integration: 'webhook' }));
    });
  } finally {
    await stack?.stop();
    await metrics?.close();
  }
});
