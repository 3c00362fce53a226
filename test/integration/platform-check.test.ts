import { createHash } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createPlatformActivities, type ProbeResult } from '../../activities/platform';
import { readAll } from '../../infra/artifacts';
import { createLogger } from '../../infra/log';
import { createWorkers } from '../../workers/start';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { PlatformCheckResult } from '../../workflows/platform-check';
import { createTemporalEnv, independentPg, independentS3, openTestRuntime } from '../helpers/real';

const EventType = temporal.api.enums.v1.EventType;

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
const bucket = `pc-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  env = await createTemporalEnv();
  runtime = await openTestRuntime(bucket);
});

afterAll(async () => {
  await runtime?.close();
  await env?.teardown();
});

async function withWorkers<T>(queues: { control: boolean; cpu: boolean; gpu: boolean }, fn: () => Promise<T>): Promise<T> {
  const started = await createWorkers({
    selection: queues,
    runtime,
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    allowCpu: true,
    log: createLogger('test-worker'),
  });
  const running = started.run();
  try {
    return await fn();
  } finally {
    started.shutdown();
    await running;
  }
}

test('platformCheck runs a probe on every queue against real Temporal, PostgreSQL and MinIO', async () => {
  const workflowId = `platform-check-${randomUUID()}`;
  const result = await withWorkers({ control: true, cpu: true, gpu: true }, () =>
    env.client.workflow.execute('platformCheck', { taskQueue: TASK_QUEUES.control, workflowId, args: [{}] }),
  ) as PlatformCheckResult;

  expect(result.ok).toBe(true);
  expect(result.queues.map((q) => q.queue)).toEqual([TASK_QUEUES.control, TASK_QUEUES.cpu, TASK_QUEUES.gpu]);
  for (const q of result.queues) {
    if (!q.ok) throw new Error(`${q.queue}: ${q.error}`);
    expect(q.result.worker).toMatch(new RegExp(`^${q.queue}@`));
    expect(q.result.artifact.readBackSha256).toBe(q.result.artifact.sha256);
    expect(q.result.onnx.output).toBeCloseTo(q.result.onnx.expected, 5);
    expect(q.result.artifact.uri.startsWith(`s3://${bucket}/artifacts/cas/sha256/`)).toBe(true);
  }

  // Server-side history: one probe scheduled on each queue, each completed by that queue's worker.
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = (history.events ?? []).filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
  const probeQueues = scheduled
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'platformProbe')
    .map((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name)
    .sort();
  expect(probeQueues).toEqual([TASK_QUEUES.control, TASK_QUEUES.cpu, TASK_QUEUES.gpu].sort());
  const startedIdentities = (history.events ?? [])
    .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    .map((e) => e.activityTaskStartedEventAttributes?.identity);
  for (const q of [TASK_QUEUES.control, TASK_QUEUES.cpu, TASK_QUEUES.gpu]) {
    expect(startedIdentities.some((id) => id?.startsWith(`${q}@`))).toBe(true);
  }

  // The objects, through a second S3 client.
  const s3 = independentS3();
  for (const q of result.queues) {
    if (!q.ok) continue;
    const key = q.result.artifact.uri.slice(`s3://${bucket}/`.length);
    const bytes = await readAll(await s3.getObject(bucket, key));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(q.result.artifact.sha256);
    const model = await s3.statObject(bucket, q.result.onnx.uri.slice(`s3://${bucket}/`.length));
    expect(model.size).toBeGreaterThan(50);
  }

  // The rows, through a second PostgreSQL connection.
  const pg = await independentPg();
  try {
    const runs = await pg.query('select id, status, finished_at from pipeline_runs where workflow_id = $1', [workflowId]);
    expect(runs.rows).toHaveLength(1);
    expect(runs.rows[0].status).toBe('succeeded');
    expect(runs.rows[0].finished_at).not.toBeNull();
    const steps = await pg.query('select step_name, status, worker from step_runs where pipeline_run_id = $1 order by step_name', [runs.rows[0].id]);
    expect(steps.rows.map((r) => r.step_name)).toEqual([`probe:${TASK_QUEUES.control}`, `probe:${TASK_QUEUES.cpu}`, `probe:${TASK_QUEUES.gpu}`]);
    expect(steps.rows.every((r) => r.status === 'succeeded')).toBe(true);
    const artifacts = await pg.query(
      'select a.sha256, a.media_type from artifacts a join step_runs s on s.id = a.producing_step_run_id where s.pipeline_run_id = $1',
      [runs.rows[0].id],
    );
    expect(artifacts.rows.some((r) => r.media_type === 'application/onnx')).toBe(true);
  } finally {
    await pg.end();
  }
});

test('a queue nobody polls fails the check with a message naming the queue', async () => {
  const workflowId = `platform-check-nogpu-${randomUUID()}`;
  const err = await withWorkers({ control: true, cpu: true, gpu: false }, () =>
    env.client.workflow.execute('platformCheck', {
      taskQueue: TASK_QUEUES.control,
      workflowId,
      args: [{ scheduleToStartTimeoutSeconds: 2 }],
    }),
  ).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause?.message).toMatch(/mlops-gpu: no worker polled mlops-gpu within 2s/);
  expect(cause?.message).not.toMatch(/mlops-cpu/);
});

test('bad input fails at once, non-retryably, naming the field', async () => {
  const err = await withWorkers({ control: true, cpu: false, gpu: false }, () =>
    env.client.workflow.execute('platformCheck', {
      taskQueue: TASK_QUEUES.control,
      workflowId: `platform-check-bad-${randomUUID()}`,
      args: [{ gpuClass: 'H100 PCIe', bogus: 1 }],
    }),
  ).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as { message: string; type?: string; nonRetryable?: boolean };
  expect(cause.type).toBe('InvalidInput');
  expect(cause.nonRetryable).toBe(true);
  expect(cause.message).toMatch(/gpuClass/);
  expect(cause.message).toMatch(/bogus/);
});

test('the probe activity is idempotent: a retry leaves the same rows and objects', async () => {
  const activities = createPlatformActivities({ db: runtime.db, artifacts: runtime.artifacts, worker: { identity: 'test@local', queue: TASK_QUEUES.cpu } });
  const workflowId = `idem-${randomUUID()}`;
  const info = { workflowExecution: { workflowId, runId: randomUUID() } };
  const first: ProbeResult = await new MockActivityEnvironment(info).run(activities.platformProbe, { checkId: workflowId, queue: TASK_QUEUES.cpu });
  const second: ProbeResult = await new MockActivityEnvironment({ ...info, attempt: 2 }).run(activities.platformProbe, { checkId: workflowId, queue: TASK_QUEUES.cpu });
  expect(second.artifact.uri).toBe(first.artifact.uri);
  expect(second.metadata).toEqual(first.metadata);
  const pg = await independentPg();
  try {
    const counts = await pg.query(
      `select (select count(*) from pipeline_runs where workflow_id = $1)::int as runs,
              (select count(*) from step_runs s join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1)::int as steps,
              (select attempts from step_runs s join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1) as attempts`,
      [workflowId],
    );
    expect(counts.rows[0]).toEqual({ runs: 1, steps: 1, attempts: 2 });
  } finally {
    await pg.end();
  }
});
