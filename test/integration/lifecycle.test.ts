import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { signalLifecycle } from '../../client/lifecycle';
import { TASK_QUEUES, lifecycleWorkflowId, monitoringWorkflowId } from '../../workflows/contracts/names';
import {
  lifecycleStatusQuery,
  monitoringThresholds,
  pauseSignal,
  resumeMonitoringSignal,
  retrainSignal,
  setThresholdsSignal,
  type LifecyclePolicyInput,
  type LifecycleStatus,
  type MonitoringCheckInput,
  type MonitoringReport,
} from '../../workflows/contracts/lifecycle';
import { monitoringStatusQuery, type MonitoringActivities } from '../../workflows/monitoring';
import { releaseSignal, specQuery } from '../helpers/fake-workflows';
import { PROJECT_ROOT } from '../../infra/paths';
import { waitFor } from '../helpers/wait';
import { createTemporalEnv, testServices } from '../helpers/real';

const execFileP = promisify(execFile);

/**
 * The lifecycle's rules on a real Temporal server, with the real lifecycle and monitoring
 * workflows and stand-in children the test releases: duplicates, coalescing, budget,
 * continue-as-new with state intact, and monitoring's breach → retrain.
 */

jest.setTimeout(180_000);

let env: TestWorkflowEnvironment;
let client: Client;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  env = await createTemporalEnv();
  client = env.client;
  bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../helpers/fake-workflows'), logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as never });
});

afterAll(async () => {
  await env?.teardown();
});

type FakeActivities = MonitoringActivities & { currentProduction(input: { model: string }): Promise<number | null> };

async function withWorkers<T>(activities: FakeActivities, fn: () => Promise<T>): Promise<T> {
  const workers = await Promise.all(
    [TASK_QUEUES.control, TASK_QUEUES.cpu].map((taskQueue) =>
      Worker.create({ connection: env.nativeConnection, taskQueue, activities, ...(taskQueue === TASK_QUEUES.control ? { workflowBundle: bundle } : {}) }),
    ),
  );
  const running = Promise.all(workers.map((w) => w.run()));
  try {
    return await fn();
  } finally {
    for (const w of workers) w.shutdown();
    await running;
  }
}

const noProduction: FakeActivities = {
  currentProduction: async () => null,
  monitoringCheck: async () => {
    throw new Error('not used');
  },
};

const policy = (extra: LifecyclePolicyInput = {}): LifecyclePolicyInput => ({
  cooldownSeconds: 0,
  dailyBudget: 100,
  training: { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, resources: { gpu: 0 } },
  monitoring: { enabled: false },
  ...extra,
});


const status = (h: WorkflowHandle) => h.query(lifecycleStatusQuery);
const trainingRunning = (st: LifecycleStatus) => (st.running?.kind === 'training' ? st.running.workflowId : undefined);

/** Child trainings the lifecycle started, from its histories (every run of the id). */
async function trainingsStarted(model: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(model)}'` })) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    for (const e of history.events ?? []) {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      if (a?.workflowType?.name === 'continuousTraining') ids.push(a.workflowId!);
    }
  }
  return ids;
}

async function release(workflowId: string, version: number, s: 'registered' | 'rejected' = 'registered') {
  // The lifecycle names its child in its state before the server has started it: wait for the child itself.
  await waitFor(`child ${workflowId} started`, async () => ((await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING' ? true : undefined));
  await client.workflow.getHandle(workflowId).signal(releaseSignal, { version, status: s });
}

test('a registry that fails is retried, never read as "no production"; thresholds that cannot reach monitoring are an error decision', async () => {
  const model = `flaky-${Date.now().toString(36)}`;
  let calls = 0;
  const flaky: FakeActivities = {
    currentProduction: async () => {
      // Five failures: as many attempts as the lookup had before, after which it read "none".
      if (++calls <= 5) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      return 3;
    },
    monitoringCheck: async () => {
      throw new Error('not used');
    },
  };
  await withWorkers(flaky, async () => {
    const handle = await client.workflow.start('modelLifecycle', { taskQueue: TASK_QUEUES.control, workflowId: lifecycleWorkflowId(model), args: [{ model, policy: policy({ monitoring: { enabled: true, periodSeconds: 3600 } }) }] });
    try {
      const s = await waitFor('the production version read from the registry', async () => {
        const st = await handle.query(lifecycleStatusQuery);
        return st.production !== null ? st : undefined;
      }, 60_000);
      expect(s.production).toBe(3);
      expect(calls).toBe(6);
      // Monitoring went away: new thresholds cannot reach it, and the status says so.
      await waitFor('monitoring started', async () => ((await client.workflow.getHandle(monitoringWorkflowId(model)).describe().catch(() => undefined))?.status.name === 'RUNNING' ? true : undefined));
      await client.workflow.getHandle(monitoringWorkflowId(model)).terminate('test');
      await handle.signal('setPolicy', policy({ monitoring: { enabled: true, periodSeconds: 3600, thresholds: { psiAct: 0.5 } } }));
      const after = await waitFor('an error decision for the undelivered thresholds', async () => {
        const st = await handle.query(lifecycleStatusQuery);
        return st.decisions.some((d) => d.kind === 'error' && d.detail.includes('setThresholds not delivered')) ? st : undefined;
      });
      expect(after.policy.monitoring.thresholds.psiAct).toBe(0.5);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
      await client.workflow.getHandle(monitoringWorkflowId(model)).terminate('test over').catch(() => undefined);
    }
  });
});

test('1,000 duplicate retrain signals in a burst start exactly one training', async () => {
  const model = 'dup-burst';
  await withWorkers(noProduction, async () => {
    const h = await signalLifecycle(client, model, 'retrain', { reason: 'alert', source: 'webhook', dedupeKey: 'alert-42' }, policy());
    await Promise.all(Array.from({ length: 999 }, () => h.signal(retrainSignal, { reason: 'alert', source: 'webhook', dedupeKey: 'alert-42' })));
    const s = await waitFor('all 1,000 signals handled', async () => {
      const st = await status(h);
      return st.counters.triggers === 1000 && st.running ? st : undefined;
    });
    expect(s.counters.duplicates).toBe(999);
    expect(s.running?.kind).toBe('training');
    expect(s.pending).toHaveLength(0);
    await release(s.running!.workflowId, 1);
    const idle = await waitFor('idle', async () => {
      const st = await status(h);
      return st.phase === 'idle' && st.counters.promotions === 1 ? st : undefined;
    });
    expect(idle.counters.trainings).toBe(1);
    expect(idle.production).toBe(1);
    expect(await trainingsStarted(model)).toHaveLength(1);
    const dropped = idle.decisions.find((d) => d.kind === 'duplicate-dropped');
    expect(dropped?.figures).toEqual({ key: 'alert-42', count: 999 });
    await h.terminate();
  });
});

test('triggers during a running training give exactly one follow-up, with all of them', async () => {
  const model = 'coalesce';
  await withWorkers(noProduction, async () => {
    const h = await signalLifecycle(client, model, 'retrain', { reason: 'first', source: 'cli' }, policy());
    const first = await waitFor('training 1', async () => trainingRunning(await status(h)));
    for (let i = 0; i < 5; i++) await h.signal(retrainSignal, { reason: `keyed ${i}`, source: 'monitoring', dedupeKey: `k${i}` });
    for (let i = 0; i < 5; i++) await h.signal(retrainSignal, { reason: `plain ${i}`, source: 'schedule' });
    const during = await waitFor('10 coalesced', async () => {
      const st = await status(h);
      return st.pending.length === 10 ? st : undefined;
    });
    expect(during.counters.coalesced).toBe(10);
    expect(during.running?.workflowId).toBe(first);
    await release(first, 1);
    const second = await waitFor('training 2', async () => {
      const st = await status(h);
      return st.running?.kind === 'training' && st.running.workflowId !== first ? st.running : undefined;
    });
    expect(second.triggers.map((t) => t.reason)).toEqual([...Array.from({ length: 5 }, (_, i) => `keyed ${i}`), ...Array.from({ length: 5 }, (_, i) => `plain ${i}`)]);
    await release(second.workflowId, 2, 'rejected');
    const idle = await waitFor('idle', async () => {
      const st = await status(h);
      return st.phase === 'idle' && st.counters.trainings === 2 ? st : undefined;
    });
    // The rejected candidate was not promoted; production stays v1.
    expect(idle.production).toBe(1);
    expect(idle.counters.promotions).toBe(1);
    expect(await trainingsStarted(model)).toHaveLength(2);
    await h.terminate();
  });
});

test('the daily budget defers a trigger; raising it by setPolicy lets the training start', async () => {
  const model = 'budget';
  await withWorkers(noProduction, async () => {
    const h = await signalLifecycle(client, model, 'retrain', { reason: 'one', source: 'cli' }, policy({ dailyBudget: 1 }));
    const first = await waitFor('training 1', async () => trainingRunning(await status(h)));
    await release(first, 1);
    await waitFor('idle', async () => ((await status(h)).phase === 'idle' ? true : undefined));
    await h.signal(retrainSignal, { reason: 'two', source: 'cli' });
    const deferred = await waitFor('over budget', async () => {
      const st = await status(h);
      return st.phase === 'over-budget' ? st : undefined;
    });
    expect(deferred.pending).toHaveLength(1);
    expect(deferred.nextEligibleAt).toBeDefined();
    expect(deferred.decisions.some((d) => d.kind === 'deferred')).toBe(true);
    await signalLifecycle(client, model, 'setPolicy', policy({ dailyBudget: 2 }));
    const second = await waitFor('training 2', async () => {
      // Not the promotion that runs between the two trainings (it ends at once here).
      const r = (await status(h)).running;
      return r?.kind === 'training' && r.workflowId !== first ? r.workflowId : undefined;
    });
    await release(second, 2);
    await h.terminate();
  });
});

test('newData feeds the next training its newest window of URIs', async () => {
  const model = 'new-data';
  await withWorkers(noProduction, async () => {
    const uris = ['s3://data/flights/2001-02.parquet', 's3://data/flights/2001-03.parquet', 's3://data/flights/2001-04.parquet'];
    const h = await signalLifecycle(client, model, 'newData', { uris: uris.slice(0, 2), dedupeKey: 'batch-1' }, policy({ dataWindow: 2 }));
    const first = await waitFor('training', async () => trainingRunning(await status(h)));
    const spec = await client.workflow.getHandle(first).query(specQuery);
    expect(spec.dataset).toEqual({ uris: uris.slice(0, 2) });
    await h.signal('newData', { uris: uris.slice(0, 2), dedupeKey: 'batch-1' });
    await h.signal('newData', { uris: [uris[2]!], dedupeKey: 'batch-2' });
    await release(first, 1);
    const second = await waitFor('training 2', async () => {
      // Not the promotion that runs between the two trainings (it ends at once here).
      const r = (await status(h)).running;
      return r?.kind === 'training' && r.workflowId !== first ? r.workflowId : undefined;
    });
    expect((await client.workflow.getHandle(second).query(specQuery)).dataset).toEqual({ uris: uris.slice(1) });
    const st = await status(h);
    expect(st.dataUris).toEqual(uris);
    expect(st.counters.duplicates).toBe(1);
    await release(second, 2);
    await h.terminate();
  });
});

test('bad signals and a bad policy are refused with the field named; the lifecycle goes on', async () => {
  const model = 'bad-input';
  await withWorkers(noProduction, async () => {
    const h = await signalLifecycle(client, model, 'setPolicy', { cooldownSeconds: -1 } as LifecyclePolicyInput, policy());
    await h.signal(retrainSignal, { reason: 'x', source: 'nowhere' } as never);
    await h.signal('newData', { uris: ['http://example.com/x.parquet'] });
    const st = await waitFor('3 errors', async () => {
      const s = await status(h);
      return s.decisions.filter((d) => d.kind === 'error').length === 3 ? s : undefined;
    });
    const errors = st.decisions.filter((d) => d.kind === 'error').map((d) => d.detail);
    // Signals buffered before their handlers exist are delivered in handler order: match, not index.
    expect(errors).toEqual(expect.arrayContaining([expect.stringMatching(/^setPolicy ignored: .*cooldownSeconds/), expect.stringMatching(/^retrain ignored: source/), expect.stringMatching(/^newData ignored: uris\.0/)]));
    expect(st.policy.cooldownSeconds).toBe(0);
    expect(st.counters.trainings).toBe(0);
    await h.terminate();
  });
  // A lifecycle that a refused message started (no policy, nothing valid) ends at once with the reason, instead of idling.
  const orphan = await client.workflow.signalWithStart('modelLifecycle', { taskQueue: TASK_QUEUES.control, workflowId: lifecycleWorkflowId('bad-signal-start'), args: [{ model: 'bad-signal-start' }], signal: 'retrain', signalArgs: [{ reason: 'x', source: 'nowhere' }] });
  await withWorkers(noProduction, async () => {
    await expect(orphan.result()).rejects.toMatchObject({ cause: { message: expect.stringMatching(/^the lifecycle of bad-signal-start was started by a message it refused, so it ends: retrain ignored: source/) } });
  });
  // A lifecycle started with a bad policy fails at once, non-retryably, naming the field.
  const h = await client.workflow.start('modelLifecycle', { taskQueue: TASK_QUEUES.control, workflowId: lifecycleWorkflowId('bad-start'), args: [{ model: 'bad-start', policy: { cooldownSeconds: 'soon' } }] });
  await withWorkers(noProduction, async () => {
    await expect(h.result()).rejects.toMatchObject({ cause: { message: expect.stringMatching(/cooldownSeconds/) } });
  });
});

test('lifecycle survives continue-as-new with its policy, dedupe keys, data window and counters', async () => {
  const model = 'can-lifecycle';
  await withWorkers(noProduction, async () => {
    const h = await client.workflow.signalWithStart('modelLifecycle', {
      taskQueue: TASK_QUEUES.control,
      workflowId: lifecycleWorkflowId(model),
      args: [{ model, policy: policy({ cooldownSeconds: 1, dataWindow: 5 }), maxHistoryEvents: 40 }],
      signal: 'newData',
      signalArgs: [{ uris: ['s3://data/a.parquet'], dedupeKey: 'a' }],
    });
    const first = await waitFor('training', async () => trainingRunning(await status(h)));
    for (let i = 0; i < 30; i++) await h.signal(retrainSignal, { reason: `r${i}`, source: 'api', dedupeKey: `key-${i}` });
    await release(first, 7);
    const second = await waitFor('follow-up', async () => {
      // Not the promotion that runs between the two trainings (it ends at once here).
      const r = (await status(h)).running;
      return r?.kind === 'training' && r.workflowId !== first ? r.workflowId : undefined;
    });
    await release(second, 8);
    const after = await waitFor('continued as new', async () => {
      const d = await client.workflow.getHandle(lifecycleWorkflowId(model)).describe();
      const st = await client.workflow.getHandle(lifecycleWorkflowId(model)).query(lifecycleStatusQuery);
      return d.runId !== h.signaledRunId && st.generation >= 2 && st.phase === 'idle' ? st : undefined;
    });
    expect(after.policy.cooldownSeconds).toBe(1);
    expect(after.policy.dataWindow).toBe(5);
    expect(after.dataUris).toEqual(['s3://data/a.parquet']);
    expect(after.production).toBe(8);
    expect(after.counters.trainings).toBe(2);
    expect(after.counters.triggers).toBe(31);
    // A key seen before continue-as-new is still a duplicate after it.
    const latest = client.workflow.getHandle(lifecycleWorkflowId(model));
    await latest.signal(retrainSignal, { reason: 'again', source: 'api', dedupeKey: 'key-3' });
    const st = await waitFor('duplicate seen', async () => {
      const s: LifecycleStatus = await latest.query(lifecycleStatusQuery);
      return s.counters.duplicates === 1 ? s : undefined;
    });
    expect(st.pending).toHaveLength(0);
    await latest.terminate();
  });
});

function report(input: MonitoringCheckInput, n: number, breach: boolean): MonitoringReport {
  return {
    reportId: `r${n}`,
    model: input.model,
    version: 3,
    windowStart: input.windowStart,
    windowEnd: input.windowEnd,
    rows: 1000,
    labeledRows: 0,
    level: breach ? 'act' : 'ok',
    breach,
    reasons: breach ? ['distance PSI 0.41 ≥ 0.2'] : [],
    features: { distance: { kind: 'numeric', psi: breach ? 0.41 : 0.01, js: 0.1, ks: 0.2, ksPValue: 0, missingFraction: 0, baselineMissingFraction: 0 } },
    quality: { missingInputs: [], unexpectedInputs: [], schemaChanged: false },
  };
}

test('monitoring survives continue-as-new with its state, pauses, and on a breach starts a retrain through the lifecycle', async () => {
  const model = 'monitored';
  const calls: MonitoringCheckInput[] = [];
  let breachFrom = Number.POSITIVE_INFINITY;
  const activities: FakeActivities = {
    currentProduction: async () => 3,
    monitoringCheck: async (input) => {
      calls.push(input);
      return report(input, calls.length, calls.length >= breachFrom);
    },
  };
  await withWorkers(activities, async () => {
    const lifecycle = await signalLifecycle(client, model, 'setPolicy', policy({ monitoring: { enabled: true, periodSeconds: 1 } }), policy({ monitoring: { enabled: true, periodSeconds: 1 } }));
    await waitFor('monitoring started', async () => ((await status(lifecycle)).decisions.some((d) => d.kind === 'monitoring-started') ? true : undefined));
    // The lifecycle started monitoring with the policy's period; restart it with a short run length for this test.
    const mon = client.workflow.getHandle(monitoringWorkflowId(model));
    await mon.terminate();
    const started = await client.workflow.start('monitoring', {
      taskQueue: TASK_QUEUES.control,
      workflowId: monitoringWorkflowId(model),
      args: [{ model, periodSeconds: 1, checksPerRun: 2 }],
    });
    await started.signal(setThresholdsSignal, { psiAct: 0.3, psiWarn: 0.15 });
    await waitFor('3 checks', async () => (calls.length >= 3 ? true : undefined));
    const current = client.workflow.getHandle(monitoringWorkflowId(model));
    const st = await waitFor('continued as new', async () => {
      const d = await current.describe();
      const s = await current.query(monitoringStatusQuery);
      return d.runId !== started.firstExecutionRunId && s.checks >= 3 ? s : undefined;
    });
    expect(st.thresholds).toEqual(monitoringThresholds.parse({ psiAct: 0.3, psiWarn: 0.15 }));
    expect(calls[calls.length - 1]!.thresholds.psiAct).toBe(0.3);
    // Each window starts where the last verdict ended: no gap, no overlap.
    for (let i = 1; i < calls.length; i++) expect(calls[i]!.windowStart).toBe(calls[i - 1]!.windowEnd);

    await current.signal(pauseSignal, { reason: 'maintenance' });
    await waitFor('paused', async () => ((await current.query(monitoringStatusQuery)).paused ? true : undefined));
    const before = calls.length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(calls.length).toBeLessThanOrEqual(before + 1);
    breachFrom = calls.length + 1;
    await current.signal(resumeMonitoringSignal);

    const training = await waitFor('retrain from monitoring', async () => (await status(lifecycle)).running, 30_000);
    const trig = training.triggers[0]!;
    expect(trig.source).toBe('monitoring');
    expect(trig.dedupeKey).toBe(`monitoring:${model}:v3`);
    expect(trig.figures).toMatchObject({ version: 3, maxPsi: 0.41, maxPsiFeature: 'distance' });
    // Further breaches on the same version are duplicates, not new trainings.
    await waitFor('a duplicate breach', async () => ((await status(lifecycle)).counters.duplicates >= 1 ? true : undefined), 30_000);
    const latestReport = await current.query('latestReport');
    expect(latestReport).toMatchObject({ breach: true, version: 3 });
    await release(training.workflowId, 4);
    await current.terminate();
    await client.workflow.getHandle(lifecycleWorkflowId(model)).terminate();
  });
});

test('policy changes queued while no worker runs, handled in one task that also continues as new: monitoring ends with the last thresholds', async () => {
  const model = `thresholds-${Date.now().toString(36)}`;
  const quiet: FakeActivities = { currentProduction: async () => 2, monitoringCheck: async () => { throw new Error('not used: the period is an hour'); } };
  const withPsiWarn = (psiWarn: number) => policy({ monitoring: { enabled: true, periodSeconds: 3600, thresholds: { psiWarn } } });
  const lifecycle = await withWorkers(quiet, async () => {
    const h = await client.workflow.start('modelLifecycle', { taskQueue: TASK_QUEUES.control, workflowId: lifecycleWorkflowId(model), args: [{ model, policy: withPsiWarn(0.1), maxHistoryEvents: 20 }] });
    await waitFor('monitoring started', async () => ((await status(h)).decisions.some((d) => d.kind === 'monitoring-started') ? true : undefined));
    return h;
  });
  // With no worker, the changes wait on the server and reach the lifecycle in one workflow task,
  // past its history bound: the signals to monitoring and the continue-as-new leave together.
  const last = 0.1 + 5 / 100;
  for (let i = 1; i <= 5; i++) await lifecycle.signal('setPolicy', withPsiWarn(0.1 + i / 100));
  expect((await lifecycle.describe()).historyLength).toBeGreaterThanOrEqual(20);
  await withWorkers(quiet, async () => {
    const mon = client.workflow.getHandle(monitoringWorkflowId(model));
    const got = await waitFor('the last thresholds at monitoring', async () => {
      const st = await mon.query(monitoringStatusQuery);
      return st.thresholds.psiWarn === last ? st : undefined;
    }, 60_000);
    expect(got.thresholds.psiWarn).toBe(last);
    // The lifecycle did continue as new (else nothing here was at risk).
    let runs = 0;
    for await (const _ of client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(model)}'` })) runs++;
    expect(runs).toBeGreaterThanOrEqual(2);
    await mon.terminate();
    await client.workflow.getHandle(lifecycleWorkflowId(model)).terminate();
  });
});

test("the README's Temporal CLI commands start and signal the lifecycle as written", async () => {
  const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
  const block = /```sh\n(temporal workflow signal-with-start --workflow-id model\/flights-delay[\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  const commands = block!
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l.startsWith('temporal '));
  expect(commands.map((c) => c.split(' ').slice(0, 3).join(' '))).toEqual(['temporal workflow signal-with-start', 'temporal workflow signal', 'temporal workflow query']);
  const target = env.address;
  await withWorkers(noProduction, async () => {
    const outputs: string[] = [];
    for (const command of commands) {
      // The shell parses the quoting exactly as a user's would.
      const { stdout } = await execFileP('bash', ['-c', `${command} --address ${target}`], { env: { ...process.env, PATH: `${path.dirname(testServices.temporalCli())}:${process.env.PATH}` } });
      outputs.push(stdout);
    }
    const h = client.workflow.getHandle(lifecycleWorkflowId('flights-delay'));
    const st = await waitFor('both triggers', async () => {
      const s = await status(h);
      return s.counters.triggers === 2 ? s : undefined;
    });
    expect(st.decisions.filter((d) => d.kind === 'trigger' || d.kind === 'coalesced').map((d) => d.source)).toEqual(['cli', 'cli']);
    expect(st.counters.trainings).toBe(1);
    expect(JSON.parse(outputs[2]!)).toMatchObject({ queryResult: [expect.objectContaining({ model: 'flights-delay' })] });
    await release(st.running!.workflowId, 1);
    await h.terminate();
  });
});
