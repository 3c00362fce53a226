import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { WorkerRuntime } from '../../workers/runtime';
import { MlopsPlugin } from '../../workers/plugin';
import { RETRAIN_SIGNAL, lifecycleWorkflowId } from '../../workflows/contracts/names';
import { lifecycleStatusQuery, type LifecyclePolicyInput } from '../../workflows/contracts/lifecycle';
import type { TrainingResult } from '../../workflows/continuous-training';
import { createTemporalEnv, openTestRuntime } from '../helpers/real';
import { readmeBlock, runReadmeLine } from '../helpers/readme-commands';
import { waitFor } from '../helpers/wait';
import { SILENT_LOGGER } from '../helpers/workers';

/**
 * Worker Versioning with two builds on the dev server: build A (the previous release: the
 * lifecycle's newest patch did not exist) and build B (this code), each with control, CPU and
 * GPU Workers in one Worker Deployment. A training started on A finishes on A while a new one
 * runs on B; a lifecycle started on A moves to B at its next task and takes the patched branch.
 * The rollout is the README's Temporal CLI block, run as written.
 */

const { EventType, PendingActivityState, VersioningBehavior } = temporal.api.enums.v1;
const PREVIOUS_RELEASE_API = path.join(__dirname, '..', 'fixtures', 'versioning', 'previous-release-workflow-api.ts');

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`ver-${randomUUID().slice(0, 8)}`)]);
});

afterAll(async () => {
  await runtime?.close();
  await env?.teardown();
});

const deployment = `mlops-${randomUUID().slice(0, 6)}`;

function plugin(buildId: string): MlopsPlugin {
  return new MlopsPlugin({ config: runtime.config, database: { db: runtime.db, schema: runtime.config.databaseSchema }, artifacts: runtime.artifacts, gpus: 'cpu', migrate: false, deployment: { name: deployment, buildId } });
}

async function bundle(p: MlopsPlugin, previousRelease: boolean): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    plugins: [p],
    logger: SILENT_LOGGER,
    ...(previousRelease
      ? {
          webpackConfigHook: (config) => {
            config.resolve = { ...config.resolve, alias: { ...(config.resolve?.alias as Record<string, string> | undefined), '@temporalio/workflow$': PREVIOUS_RELEASE_API } };
            return config;
          },
        }
      : {}),
  });
}

/** Control, CPU and GPU Workers of one build, named by it. */
async function startBuild(p: MlopsPlugin, workflowBundle: WorkflowBundleWithSourceMap, build: string): Promise<() => Promise<void>> {
  const q = p.taskQueues;
  const workers = await Promise.all(
    [q.control, q.cpu, q.gpu].map((taskQueue) =>
      Worker.create({ connection: env.nativeConnection, taskQueue, identity: `${taskQueue}@build-${build}`, plugins: [p], ...(taskQueue === q.control ? { workflowBundle } : {}) }),
    ),
  );
  const running = Promise.all(workers.map((w) => w.run()));
  return async () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running;
  };
}

const temporalCli = (line: string) => runReadmeLine(line, env);

/** Runs a CLI line until the server accepts it: a version exists only once its Workers have polled. */
async function whenVersionExists(line: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await temporalCli(line);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

interface TaskRecord {
  at: number;
  build?: string;
  behavior?: number;
}

/** Each completed workflow task (build, behavior), each activity start (worker identity), and the patches recorded. */
async function historyOf(handle: WorkflowHandle): Promise<{ tasks: TaskRecord[]; activityWorkers: string[]; patches: string[] }> {
  const events = (await handle.fetchHistory()).events ?? [];
  const tasks: TaskRecord[] = [];
  const activityWorkers: string[] = [];
  const patches: string[] = [];
  for (const e of events) {
    const at = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
      const a = e.workflowTaskCompletedEventAttributes!;
      tasks.push({ at, build: a.deploymentVersion?.buildId ?? undefined, behavior: a.versioningBehavior ?? undefined });
    }
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) activityWorkers.push(e.activityTaskStartedEventAttributes?.identity ?? '');
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_patch') {
      for (const p of Object.values(marker.details ?? {})) for (const payload of p.payloads ?? []) patches.push((JSON.parse(Buffer.from(payload.data!).toString('utf8')) as { id: string }).id);
    }
  }
  return { tasks, activityWorkers, patches };
}

test('two builds: a training started on A finishes on A while a new one runs on B; a lifecycle moves to B at its next task and takes the patched branch', async () => {
  const [ramp, current, describe] = readmeBlock('versioning: rollout');
  expect(ramp).toMatch(/^temporal worker deployment set-ramping-version --deployment-name mlops --build-id 1\.5\.0 --percentage 10 --yes$/);
  const forBuild = (line: string, build: string) => line.replace(/--(deployment-name|name) mlops\b/, `--$1 ${deployment}`).replace('--build-id 1.5.0', `--build-id ${build}`);
  const pA = plugin('a');
  const pB = plugin('b');
  const [bundleA, bundleB] = [await bundle(pA, true), await bundle(pB, false)];
  const q = pA.taskQueues;
  const stopA = await startBuild(pA, bundleA, 'a');
  let stopB: (() => Promise<void>) | undefined;
  const handles: WorkflowHandle[] = [];
  try {
    await whenVersionExists(forBuild(current!, 'a'));

    const loopModel = `ver-loop-${randomUUID().slice(0, 6)}`;
    const policy: LifecyclePolicyInput = { cooldownSeconds: 0, promote: false, monitoring: { enabled: false }, training: { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 5000, hyperparameters: { rounds: 10 }, resources: { gpu: 0 }, gates: { minAuc: 0.5, maxBaselineLoss: 1 } } };
    const loop = await env.client.workflow.start('modelLifecycle', { taskQueue: q.control, workflowId: lifecycleWorkflowId(loopModel), args: [{ model: loopModel, policy }] });
    handles.push(loop);
    await waitFor('the lifecycle on A', async () => ((await historyOf(loop)).tasks.length > 0 ? true : undefined));

    // B's Workers poll beside A's; A is still current, so a training started now runs on A.
    stopB = await startBuild(pB, bundleB, 'b');
    const onA = await env.client.workflow.start('continuousTraining', {
      taskQueue: q.control,
      workflowId: `ver-a-${randomUUID()}`,
      args: [{ model: `ver-pinned-${randomUUID().slice(0, 6)}`, preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 60_000, hyperparameters: { rounds: 3000, maxDepth: 6 }, resources: { gpu: 0 }, training: { heartbeatSeconds: 2, checkpointEvery: 50 }, gates: { maxBaselineLoss: 1 } }],
    });
    handles.push(onA);
    // Switch while it trains: evaluate, validate-model and register come after the switch. The
    // train step is paused across the switch (the README's operator command), so however long the
    // switch takes, the rest of the run comes after it.
    await waitFor('the training on A in its train step', async () => ((await onA.describe()).raw.pendingActivities?.some((a) => a.activityType?.name === 'train') ? true : undefined), 120_000);
    const [pause, , unpause] = readmeBlock('operator: pause');
    const onTraining = (line: string) => line.replace('train-flights-jan', onA.workflowId);
    await temporalCli(onTraining(pause!));
    await waitFor('the train step paused', async () => ((await onA.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'train')?.state === PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED ? true : undefined), 120_000);

    await whenVersionExists(forBuild(ramp!, 'b'));
    expect(await temporalCli(forBuild(describe!, 'b'))).toMatch(/RampingVersionBuildID\s+b\n\s+RampingVersionPercentage\s+10\n/);
    await temporalCli(forBuild(current!, 'b'));
    const switchedAt = Date.now();
    expect(await temporalCli(forBuild(describe!, 'b'))).toMatch(/CurrentVersionBuildID\s+b\n/);
    await temporalCli(onTraining(unpause!));

    await loop.signal(RETRAIN_SIGNAL, { reason: 'after the rollout', source: 'cli' });
    const trainingId = await waitFor('the lifecycle training', async () => {
      const st = await loop.query(lifecycleStatusQuery);
      return st.running?.kind === 'training' ? st.running.workflowId : st.decisions.find((d) => d.kind === 'training-started')?.workflowId;
    });
    const onB = env.client.workflow.getHandle(trainingId);
    handles.push(onB);
    const [a, b] = (await Promise.all([onA.result(), onB.result()])) as TrainingResult[];
    expect(a!.status).toBe('registered');
    expect(b!.status).toBe('registered');

    // PINNED: every task of the first training ran on A, also those after B became current.
    const ha = await historyOf(onA);
    expect(new Set(ha.tasks.map((t) => t.build))).toEqual(new Set(['a']));
    expect(ha.tasks.some((t) => t.at > switchedAt)).toBe(true);
    expect(ha.tasks.every((t) => t.behavior === VersioningBehavior.VERSIONING_BEHAVIOR_PINNED)).toBe(true);
    expect(ha.activityWorkers.length).toBeGreaterThanOrEqual(7);
    expect(ha.activityWorkers.every((w) => w.endsWith('@build-a'))).toBe(true);
    // The training the lifecycle started after the switch ran on B, steps included.
    const hb = await historyOf(onB);
    expect(new Set(hb.tasks.map((t) => t.build))).toEqual(new Set(['b']));
    expect(hb.activityWorkers.every((w) => w.endsWith('@build-b'))).toBe(true);
    // AUTO_UPGRADE: the lifecycle's tasks before the switch ran on A, the later ones on B, where
    // starting the training took the branch build A did not have.
    const hl = await historyOf(loop);
    expect(hl.tasks.filter((t) => t.at < switchedAt).every((t) => t.build === 'a')).toBe(true);
    expect(hl.tasks.filter((t) => t.at > switchedAt).length).toBeGreaterThan(0);
    expect(hl.tasks.filter((t) => t.at > switchedAt).every((t) => t.build === 'b')).toBe(true);
    expect(hl.tasks.every((t) => t.behavior === VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE)).toBe(true);
    expect(hl.patches).toContain('training-priority');
    const decisions = (await loop.query(lifecycleStatusQuery)).decisions;
    expect(decisions.find((d) => d.kind === 'training-started' && d.workflowId === trainingId)?.detail).toMatch(/at priority 3$/);
  } finally {
    await Promise.all(handles.map((h) => h.terminate('test over').catch(() => undefined)));
    await stopB?.();
    await stopA();
  }
});
