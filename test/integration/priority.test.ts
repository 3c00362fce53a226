import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../infra/services';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES, lifecycleWorkflowId } from '../../workflows/contracts/names';
import { lifecycleStatusQuery, type LifecyclePolicyInput } from '../../workflows/contracts/lifecycle';
import type { TrainingSpecInput } from '../../workflows/contracts/training-spec';
import { continuousTraining, scheduledRetrain } from '../../workflows';
import { createTemporalEnv, openTestRuntime } from '../helpers/real';
import { waitFor } from '../helpers/wait';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * Priority and fairness on the dev server (with the dynamic config the dev stack sets): one CPU
 * slot, one model floods the CPU queue with 20 runs, and another model's next step still starts
 * before the flood's backlog — from the server's histories.
 */

const { EventType, PendingActivityState } = temporal.api.enums.v1;

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;

const TEMPLATE = { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 2000, hyperparameters: { rounds: 5 }, resources: { gpu: 0 } } as const;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(DEV_SERVER_DYNAMIC_CONFIG), openTestRuntime(`prio-${randomUUID().slice(0, 8)}`)]);
  await workflowBundle();
});

afterAll(async () => {
  await runtime?.close();
  await env?.teardown();
});

const oneCpuSlot = (queue: string) => (queue === TASK_QUEUES.cpu ? { maxConcurrentActivityTaskExecutions: 1 } : {});

interface CpuTask {
  workflowId: string;
  type: string;
  scheduledAt: number;
  startedAt?: number;
  priority?: { priorityKey?: number | null; fairnessKey?: string | null } | null;
}

/** Every CPU-queue activity of a run, from its history: when it was scheduled and started, at which priority. */
async function cpuTasks(handle: WorkflowHandle): Promise<CpuTask[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const byScheduled = new Map<string, CpuTask>();
  for (const e of events) {
    const at = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.taskQueue?.name === TASK_QUEUES.cpu) {
      const a = e.activityTaskScheduledEventAttributes;
      byScheduled.set(String(e.eventId), { workflowId: handle.workflowId, type: a.activityType?.name ?? '?', scheduledAt: at, priority: a.priority });
    }
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      const t = byScheduled.get(String(e.activityTaskStartedEventAttributes?.scheduledEventId));
      if (t) t.startedAt = at;
    }
  }
  return [...byScheduled.values()];
}

/** Flood runs whose current CPU step is still waiting in the queue. */
async function waiting(handles: WorkflowHandle[]): Promise<number> {
  const described = await Promise.all(handles.map((h) => h.describe()));
  return described.filter((d) => (d.raw.pendingActivities ?? []).some((a) => a.state === PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED)).length;
}

async function flood(model: string, runs: number): Promise<WorkflowHandle[]> {
  return Promise.all(
    Array.from({ length: runs }, (_, i) =>
      env.client.workflow.start(continuousTraining, { taskQueue: TASK_QUEUES.control, workflowId: `flood-${model}-${i}-${randomUUID().slice(0, 6)}`, args: [{ model, ...TEMPLATE } as TrainingSpecInput] }),
    ),
  );
}

/**
 * The flood's CPU tasks that were waiting when `first` was scheduled and started after it: with
 * priority (or fairness) they start after `first`, at most one whose poll was already answered before.
 */
function overtaken(first: CpuTask, floodTasks: CpuTask[]): { waitingThen: CpuTask[]; startedBefore: CpuTask[] } {
  const waitingThen = floodTasks.filter((t) => t.scheduledAt <= first.scheduledAt && (t.startedAt === undefined || t.startedAt > first.scheduledAt));
  const startedBefore = waitingThen.filter((t) => t.startedAt !== undefined && t.startedAt < first.startedAt!);
  return { waitingThen, startedBefore };
}

/**
 * With one CPU slot: floods the queue with 20 runs of `flooder`, then starts another model's
 * run (`other`, returning the handles it started, the run last) once 15 flood runs wait, and
 * returns that run's first CPU task and every flood task, from the histories. Everything it
 * started is terminated at the end.
 */
async function underFlood(flooder: string, other: (handles: WorkflowHandle[]) => Promise<WorkflowHandle>): Promise<{ first: CpuTask; floodTasks: CpuTask[] }> {
  const handles: WorkflowHandle[] = [];
  try {
    return await withTestWorkers(
      env,
      runtime,
      async () => {
        handles.push(...(await flood(flooder, 20)));
        await waitFor('15 flood runs waiting on the CPU queue', async () => ((await waiting(handles)) >= 15 ? true : undefined), 60_000, 250);
        const run = await other(handles);
        const first = await waitFor('the other model\'s first CPU step started', async () => (await cpuTasks(run)).find((t) => t.startedAt !== undefined), 120_000, 250);
        const floodTasks = (await Promise.all(handles.slice(0, 20).map(cpuTasks))).flat();
        return { first, floodTasks };
      },
      { workerOptions: oneCpuSlot },
    );
  } finally {
    await Promise.all(handles.map((h) => h.terminate('test over').catch(() => undefined)));
  }
}

test("one model floods the CPU queue with 20 runs; another model's scheduled retrain (priority 2) starts next", async () => {
  const flooder = `prio-flood-${randomUUID().slice(0, 6)}`;
  const other = `prio-sched-${randomUUID().slice(0, 6)}`;
  const policy: LifecyclePolicyInput = { cooldownSeconds: 0, promote: false, monitoring: { enabled: false }, training: { ...TEMPLATE } };
  const lifecycle = () => env.client.workflow.getHandle(lifecycleWorkflowId(other));
  let trainingId = '';
  let decisions: string[] = [];
  const { first, floodTasks } = await underFlood(flooder, async (handles) => {
    await env.client.workflow.execute(scheduledRetrain, { taskQueue: TASK_QUEUES.control, workflowId: `sched-${other}`, args: [{ model: other, policy }] });
    handles.push(lifecycle());
    trainingId = await waitFor('the scheduled training', async () => {
      const st = await lifecycle().query(lifecycleStatusQuery);
      return st.running?.kind === 'training' ? st.running.workflowId : undefined;
    });
    decisions = (await lifecycle().query(lifecycleStatusQuery)).decisions.map((d) => d.detail);
    const training = env.client.workflow.getHandle(trainingId);
    handles.push(training);
    return training;
  });
  expect(first.type).toBe('snapshot');
  expect(first.priority).toMatchObject({ priorityKey: 2, fairnessKey: other });
  expect(floodTasks.every((t) => t.priority?.priorityKey === 3 && t.priority.fairnessKey === flooder)).toBe(true);
  const { waitingThen, startedBefore } = overtaken(first, floodTasks);
  expect(waitingThen.length).toBeGreaterThanOrEqual(10);
  expect(startedBefore.length).toBeLessThanOrEqual(1);
  expect(decisions.some((d) => d.includes(`training ${trainingId}`) && d.endsWith('at priority 2'))).toBe(true);
});

test("at the same priority, fairness by model: a second model's manual run starts before the first model's backlog", async () => {
  const flooder = `fair-flood-${randomUUID().slice(0, 6)}`;
  const other = `fair-other-${randomUUID().slice(0, 6)}`;
  const { first, floodTasks } = await underFlood(flooder, async (handles) => {
    const [run] = await flood(other, 1);
    handles.push(run!);
    return run!;
  });
  expect(first.priority).toMatchObject({ priorityKey: 3, fairnessKey: other });
  const { waitingThen, startedBefore } = overtaken(first, floodTasks);
  expect(waitingThen.length).toBeGreaterThanOrEqual(10);
  expect(startedBefore.length).toBeLessThanOrEqual(1);
});
