import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { GpuPool, INSUFFICIENT_GPUS, type Gpu } from '../../activities/gpu-context';
import { createLogger } from '../../infra/log';
import type { WorkerRuntime } from '../../workers/runtime';
import { createWorkers, type StartedWorkers } from '../../workers/start';
import { resolveTaskQueues, type TaskQueues } from '../../workflows/contracts/task-queues';
import type { PlatformCheckResult } from '../../workflows/platform-check';
import { createTemporalEnv, independentPg, openTestRuntime, testServices } from '../helpers/real';
import { runEntry, runProcess } from '../helpers/run-entry';

/**
 * A GPU worker (our createWorkers, through the plugin) on fake GPUs: both GPU queues' Workers
 * share the pool's slot supplier, so the server never sees more started GPU activities than
 * GPUs; `resources.gpu` reaches the train step's lease, and the lineage names the leased GPUs.
 */

const H100 = 'NVIDIA H100 80GB HBM3';
const fakeGpu = (index: number): Gpu => ({ index, uuid: `GPU-${String(index).repeat(8)}-0000-0000-0000-000000000000`, name: H100, memoryMiB: 81559 });

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;
let dir: string;

// With one GPU and every GPU idle, the one slot sits in one queue's long poll, so a task on the
// other queue waits for that poll to end (a minute by default; see the README). Shorter polls
// keep this file's runs short; the assertions do not depend on it.
const SHORT_POLLS = ['--dynamic-config-value', 'matching.longPollExpirationInterval="5s"'];

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(SHORT_POLLS), openTestRuntime(`gpu-${randomUUID().slice(0, 8)}`)]);
  pg = await independentPg();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpu-slots-'));
  await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 3 LIMIT 4000) TO ${literal(path.join(dir, 'flights.parquet'))} (FORMAT parquet)`));
});

afterAll(async () => {
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function withGpuWorker<T>(gpus: Gpu[], fn: (started: StartedWorkers, queues: TaskQueues) => Promise<T>): Promise<T> {
  const taskQueues = resolveTaskQueues({ prefix: `gpu-${randomUUID().slice(0, 6)}` });
  const started = await createWorkers({
    selection: { control: true, cpu: true, gpu: true },
    runtime: { ...runtime, config: { ...runtime.config, taskQueues } },
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    allowCpu: false,
    log: createLogger('test-gpu-worker'),
    gpus: { gpus },
  });
  const running = started.run();
  try {
    return await fn(started, taskQueues);
  } finally {
    started.shutdown();
    await running;
  }
}

interface Interval {
  queue: string;
  start: number;
  end: number;
}

/** Started→closed times of the activities on `queues`, read from the server's histories. */
async function activityIntervals(workflowIds: string[], queues: string[]): Promise<Interval[]> {
  const out: Interval[] = [];
  for (const workflowId of workflowIds) {
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = new Map<string, string>();
    const started = new Map<string, number>();
    for (const e of history.events ?? []) {
      const id = String(e.eventId);
      const at = Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
      if (e.activityTaskScheduledEventAttributes) scheduled.set(id, e.activityTaskScheduledEventAttributes.taskQueue!.name!);
      const s = e.activityTaskStartedEventAttributes;
      if (s) started.set(String(s.scheduledEventId), at);
      const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
      if (closed) {
        const sid = String(closed.scheduledEventId);
        const queue = scheduled.get(sid)!;
        if (queues.includes(queue)) out.push({ queue, start: started.get(sid)!, end: at });
      }
    }
  }
  return out;
}

function maxConcurrency(intervals: Interval[]): number {
  const points = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  // An end at the same millisecond as a start frees the GPU first.
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let peak = 0;
  for (const p of points) peak = Math.max(peak, (now += p.d));
  return peak;
}

test('one GPU, both GPU queues polled: the server never has two GPU activities started at once, and none waited in the pool', async () => {
  await withGpuWorker([fakeGpu(0)], async (started, q) => {
    const classQueue = `${q.gpu}-h100`;
    expect(started.queues).toEqual([q.control, q.cpu, q.gpu, classQueue]);
    const pool = started.gpus as GpuPool;
    expect(pool).toBeInstanceOf(GpuPool);
    // Each check probes the generic and the class queue at the same time: six GPU activities.
    const ids = [1, 2, 3].map(() => `gpu-pc-${randomUUID()}`);
    const results = (await Promise.all(
      ids.map((workflowId) => env.client.workflow.execute('platformCheck', { taskQueue: q.control, workflowId, args: [{ gpuClass: 'h100', scheduleToStartTimeoutSeconds: 150 }] })),
    )) as PlatformCheckResult[];
    for (const r of results) {
      expect(r.queues.map((o) => `${o.queue}:${o.ok}`)).toEqual([`${q.control}:true`, `${q.cpu}:true`, `${q.gpu}:true`, `${classQueue}:true`]);
      for (const o of r.queues.filter((x) => x.queue === q.gpu || x.queue === classQueue)) {
        expect(o.ok && o.result.device).toBe(`gpu 0 (${H100}, CUDA_VISIBLE_DEVICES=${fakeGpu(0).uuid})`);
      }
    }
    const intervals = await activityIntervals(ids, [q.gpu, classQueue]);
    expect(intervals).toHaveLength(6);
    expect(new Set(intervals.map((i) => i.queue))).toEqual(new Set([q.gpu, classQueue]));
    expect(maxConcurrency(intervals)).toBe(1);
    // The worker side agrees: one task at a time on the slots, and every lease granted at once.
    expect(pool.stats).toMatchObject({ maxStarted: 1, leases: 6, leaseWaits: 0 });
  });
});

const spec = (model: string, gpu: number) => ({
  model,
  dataset: { uris: [`file://${path.join(dir, 'flights.parquet')}`] },
  preset: 'flights-delay',
  onFailure: 'fail',
  hyperparameters: { rounds: 3 },
  resources: { gpu },
});

test('resources.gpu: 2 on a one-GPU worker is refused, non-retryable, naming the field and both counts', async () => {
  await withGpuWorker([fakeGpu(0)], async (_started, q) => {
    const handle = await env.client.workflow.start('continuousTraining', { taskQueue: q.control, workflowId: `gpu2-${randomUUID()}`, args: [spec(`gpu2-${randomUUID().slice(0, 8)}`, 2)] });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.message).toMatch(/step train failed: resources\.gpu: the step asks for 2 GPUs but this worker has 1/);
    expect(cause.details?.[0]).toMatchObject({ step: 'train', type: INSUFFICIENT_GPUS, details: { field: 'resources.gpu', requested: 2, available: 1 } });
  });
});

test('resources.gpu: 2 on a two-GPU worker trains on both, and the lineage records the leased GPUs', async () => {
  await withGpuWorker([fakeGpu(0), fakeGpu(1)], async (started, q) => {
    const model = `gpu2ok-${randomUUID().slice(0, 8)}`;
    const workflowId = `gpu2ok-${randomUUID()}`;
    await env.client.workflow.execute('continuousTraining', { taskQueue: q.control, workflowId, args: [spec(model, 2)] });
    // The run took the patched path (gpu-count marker) and its history replays against this code.
    const shown = await runProcess(testServices.temporalCli(), ['workflow', 'show', '--workflow-id', workflowId, '--address', env.address, '-o', 'json'], { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeoutMs: 30_000 });
    expect(shown.code).toBe(0);
    const markers = (JSON.parse(shown.stdout) as { events: Array<{ markerRecordedEventAttributes?: { markerName: string; details?: Record<string, { payloads: Array<{ data: string }> }> } }> }).events
      .flatMap((e) => (e.markerRecordedEventAttributes ? [e.markerRecordedEventAttributes] : []))
      .map((m) => `${m.markerName}:${Object.values(m.details ?? {}).flatMap((d) => d.payloads.map((p) => Buffer.from(p.data, 'base64').toString())).join(',')}`);
    expect(markers.some((m) => m.includes('gpu-count'))).toBe(true);
    const histories = path.join(dir, 'histories');
    await fs.mkdir(histories, { recursive: true });
    await fs.writeFile(path.join(histories, `${workflowId}.json`), shown.stdout);
    const replay = await runEntry('infra/replay-cli.ts', [histories], { PATH: process.env.PATH, HOME: process.env.HOME, MLOPS_LOG_LEVEL: 'ERROR' }, 120_000);
    expect({ code: replay.code, stdout: replay.stdout }).toEqual({ code: 0, stdout: `ok   ${workflowId}\n` });
    const rows = await pg.query(`select mv.metrics->'lineage'->>'device' as device from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
    expect(rows.rows).toEqual([{ device: `gpu ${fakeGpu(0).uuid},${fakeGpu(1).uuid} (0: ${H100}, 1: ${H100})` }]);
    expect((started.gpus as GpuPool).stats).toMatchObject({ maxStarted: 1, leases: 1, leaseWaits: 0 });
  });
});
