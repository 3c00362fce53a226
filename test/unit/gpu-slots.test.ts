import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivitySlotInfo, SlotPermit, SlotReserveContext, TunerHolder } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import { GpuPool, INSUFFICIENT_GPUS, bindActivitiesToGpus, currentGpu, describeDevice, gpuChildEnv, gpusRequested, type Gpu } from '../../activities/gpu-context';
import { literal, withDuckDb } from '../../activities/data/duck';
import { trainModel, type TrainInput, type TrainOutput } from '../../activities/training/train';
import { runInThread } from '../../activities/training/trainers/thread-runner';
import { LocalArtifactStore } from '../../infra/artifacts';
import type { Database } from '../../infra/db/schema';
import { MlopsPlugin } from '../../workers/plugin';

/**
 * The GPU pool as Temporal's activity slot supplier for the Workers of both GPU queues, and as
 * the lease of `resources.gpu` GPUs for a step: the calls Core makes (reserve before a poll, mark
 * used when a task arrives, release when it ends or the poll comes back empty) are made here by
 * hand, in the order Core makes them.
 */

const gpu = (index: number): Gpu => ({ index, uuid: `GPU-${index}${index}${index}${index}aaaa-0000-0000-0000-000000000000`, name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 });
const reserveCtx = (taskQueue: string): SlotReserveContext => ({ slotType: 'activity', taskQueue, workerIdentity: `${taskQueue}@test`, workerBuildId: '', isSticky: false });
const slotInfo: ActivitySlotInfo = { type: 'activity', activityType: 'train' };
const tick = () => new Promise((r) => setImmediate(r));

/** A reservation as Core makes it, with a way to tell whether it was granted yet. */
function reserve(pool: GpuPool, queue: string, abort = new AbortController()) {
  const r: { permit?: SlotPermit; error?: unknown; abort: AbortController } = { abort };
  pool.slotSupplier.reserveSlot(reserveCtx(queue), abort.signal).then(
    (p) => (r.permit = p),
    (e: unknown) => (r.error = e),
  );
  return r;
}

function supplier(pool: GpuPool) {
  const s = pool.slotSupplier;
  if (s.type !== 'custom') throw new Error('not a custom supplier');
  return s;
}

test('one GPU, two queues: a second slot is handed out only when the first task has ended', async () => {
  const pool = new GpuPool([gpu(0)]);
  const a = reserve(pool, 'mlops-gpu');
  const b = reserve(pool, 'mlops-gpu-h100');
  await tick();
  expect(a.permit).toBeDefined();
  expect(b.permit).toBeUndefined();
  // Eager reservations are refused too while the GPU is promised.
  expect(supplier(pool).tryReserveSlot(reserveCtx('mlops-gpu-h100'))).toBeNull();

  supplier(pool).markSlotUsed({ slotInfo, permit: a.permit! });
  // The task on the slot leases the GPU at once: nothing waits in the pool.
  const lease = await pool.lease(1);
  expect(lease.gpus.map((g) => g.index)).toEqual([0]);
  lease.release();
  await tick();
  // The lease is back but the slot is not: still nothing for the other queue.
  expect(b.permit).toBeUndefined();
  supplier(pool).releaseSlot({ slotInfo, permit: a.permit! });
  await tick();
  expect(b.permit).toBeDefined();
  expect(pool.stats).toEqual({ permits: 1, maxStarted: 1, leases: 1, leaseWaits: 0 });
});

test('a pending reservation is withdrawn when Core aborts it; a poll that comes back empty frees the slot', async () => {
  const pool = new GpuPool([gpu(0)]);
  const a = reserve(pool, 'q1');
  const b = reserve(pool, 'q2');
  await tick();
  b.abort.abort(new Error('no longer needed'));
  await tick();
  expect((b.error as Error).message).toBe('no longer needed');
  const c = reserve(pool, 'q2');
  supplier(pool).releaseSlot({ permit: a.permit! });
  await tick();
  expect(c.permit).toBeDefined();
  expect(pool.stats.permits).toBe(1);
});

test('a queue whose poll came back empty yields the next free GPU to a busy queue, for idleQueueWaitMs', async () => {
  let now = 0;
  const pool = new GpuPool([gpu(0)], { idleQueueWaitMs: 10_000, now: () => now });
  // The class queue's poll holds the GPU and comes back empty; its poller asks again.
  const idle = reserve(pool, 'class');
  await tick();
  const busy = reserve(pool, 'generic');
  supplier(pool).releaseSlot({ permit: idle.permit! });
  await tick();
  expect(busy.permit).toBeDefined();
  const idleAgain = reserve(pool, 'class');
  supplier(pool).markSlotUsed({ slotInfo, permit: busy.permit! });
  supplier(pool).releaseSlot({ slotInfo, permit: busy.permit! });
  // Both queues wait now; the generic one had work, the class one did not: generic first.
  const busyAgain = reserve(pool, 'generic');
  await tick();
  expect(idleAgain.permit).toBeDefined(); // no busy waiter existed at that release: the idle one got it
  supplier(pool).releaseSlot({ permit: idleAgain.permit! });
  const idleThird = reserve(pool, 'class');
  await tick();
  expect(busyAgain.permit).toBeDefined();
  expect(idleThird.permit).toBeUndefined();
  supplier(pool).markSlotUsed({ slotInfo, permit: busyAgain.permit! });
  const busyThird = reserve(pool, 'generic');
  supplier(pool).releaseSlot({ slotInfo, permit: busyAgain.permit! });
  await tick();
  expect(busyThird.permit).toBeDefined();
  expect(idleThird.permit).toBeUndefined();
  // Past idleQueueWaitMs the idle queue gets its turn even though the busy one is waiting.
  supplier(pool).markSlotUsed({ slotInfo, permit: busyThird.permit! });
  const busyFourth = reserve(pool, 'generic');
  now += 10_000;
  supplier(pool).releaseSlot({ slotInfo, permit: busyThird.permit! });
  await tick();
  expect(idleThird.permit).toBeDefined();
  expect(busyFourth.permit).toBeUndefined();
});

test('a step that asks for two GPUs leases both; no slot is handed out while they are leased', async () => {
  const pool = new GpuPool([gpu(0), gpu(1)]);
  const a = reserve(pool, 'mlops-gpu');
  await tick();
  supplier(pool).markSlotUsed({ slotInfo, permit: a.permit! });
  const b = reserve(pool, 'mlops-gpu');
  await tick();
  expect(b.permit).toBeDefined();
  // The second slot's poll comes back empty while the first task leases both GPUs.
  supplier(pool).releaseSlot({ permit: b.permit! });
  const lease = await pool.lease(2);
  expect(lease.gpus.map((g) => g.index)).toEqual([0, 1]);
  const c = reserve(pool, 'mlops-gpu-h100');
  await tick();
  expect(c.permit).toBeUndefined();
  lease.release();
  await tick();
  // One of the two GPUs is still promised to the first task's slot until Core releases it.
  expect(c.permit).toBeDefined();
  expect(supplier(pool).tryReserveSlot(reserveCtx('x'))).toBeNull();
});

test('a step waiting for N GPUs heartbeats (keeping its last details), holds back new slots, and gets them FIFO', async () => {
  const pool = new GpuPool([gpu(0), gpu(1)]);
  const first = reserve(pool, 'q');
  const second = reserve(pool, 'q');
  await tick();
  supplier(pool).markSlotUsed({ slotInfo, permit: first.permit! });
  supplier(pool).markSlotUsed({ slotInfo, permit: second.permit! });
  const one = await pool.lease(1);

  const beats: unknown[] = [];
  const env = new MockActivityEnvironment({ heartbeatDetails: { round: 7, checkpoint: { uri: 'x', sha256: 'y', round: 7 } } });
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const bound = bindActivitiesToGpus({ async train(_call: { resources: { gpu: number } }) { return [currentGpu()!.cudaVisibleDevices, pool.busy]; } }, pool);
  const running = env.run(() => bound.train({ resources: { gpu: 2 } }));
  await tick();
  expect(beats).toEqual([{ round: 7, checkpoint: { uri: 'x', sha256: 'y', round: 7 } }]);
  // While it waits nothing new is polled, even after the other task's slot is released.
  const third = reserve(pool, 'q');
  one.release();
  expect(await running).toEqual([`${gpu(0).uuid},${gpu(1).uuid}`, 2]);
  await tick();
  // Both slots are still in use (Core has not released them): still no third.
  expect(third.permit).toBeUndefined();
  supplier(pool).releaseSlot({ slotInfo, permit: first.permit! });
  await tick();
  expect(third.permit).toBeDefined();
  expect(pool.stats).toMatchObject({ leases: 2, leaseWaits: 1, maxStarted: 2 });
});

test('a waiting step that is cancelled leaves the queue', async () => {
  const pool = new GpuPool([gpu(0)]);
  const held = await pool.lease(1);
  const env = new MockActivityEnvironment();
  const bound = bindActivitiesToGpus({ async probe() { return currentGpu()?.gpu.index; } }, pool);
  const waiting = env.run(() => bound.probe());
  await tick();
  env.cancel('CANCELLED');
  await expect(waiting).rejects.toBeDefined();
  held.release();
  expect((await pool.lease(1)).gpus).toEqual([gpu(0)]);
});

test('more GPUs than the worker has: refused at once, non-retryable, naming resources.gpu and both counts', async () => {
  const pool = new GpuPool([gpu(0)]);
  const bound = bindActivitiesToGpus({ async train(_call: { resources: { gpu: number } }) { return 'ran'; } }, pool);
  const err = await bound.train({ resources: { gpu: 2 } }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  expect(failure.type).toBe(INSUFFICIENT_GPUS);
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toMatch(/^resources\.gpu: the step asks for 2 GPUs but this worker has 1/);
  expect(failure.details).toEqual([{ field: 'resources.gpu', requested: 2, available: 1 }]);
  expect(pool.busy).toBe(0);
  expect(gpusRequested([{ inputs: {} }])).toBe(1);
  expect(gpusRequested([{ resources: { gpu: 4 } }])).toBe(4);
  expect(gpusRequested(['x'])).toBe(1);
});

describe('the train step on a two-GPU pool', () => {
  let dir: string;
  let store: LocalArtifactStore;
  let data: TrainInput['data'];
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-train-'));
    store = new LocalArtifactStore(path.join(dir, 'store'));
    await store.ensureReady();
    const refs: Record<string, { uri: string; sha256: string; rows: number; positives: number }> = {};
    for (const name of ['train', 'test']) {
      const file = path.join(dir, `${name}.parquet`);
      await withDuckDb((c) => c.run(`COPY (SELECT 1.5::DOUBLE AS x, 1::INTEGER AS label) TO ${literal(file)} (FORMAT parquet)`));
      const put = await store.putContent(fs.readFileSync(file), { mediaType: 'application/vnd.apache.parquet' });
      refs[name] = { uri: put.uri, sha256: put.sha256, rows: 1, positives: 1 };
    }
    data = { train: refs.train!, test: refs.test!, features: [{ name: 'x', kind: 'numeric' }] } as TrainInput['data'];
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('resources.gpu: 2 reaches the command trainer’s CUDA_VISIBLE_DEVICES, and the lineage device names both leased GPUs', async () => {
    const seen = path.join(dir, 'cuda.txt');
    const pool = new GpuPool([gpu(0), gpu(1)]);
    const deps = { artifacts: store, config: { commandTrainers: { 'cuda-dump': ['sh', '-c', `printf %s "$CUDA_VISIBLE_DEVICES" > ${seen}; printf onnx > "$MLOPS_OUTPUT_DIR/model.onnx"`] } } };
    const input: TrainInput = { model: 'gpu-unit', data, trainer: 'command', command: 'cuda-dump', hyperparameters: {}, seed: 1, checkpointEvery: 10 };
    const bound = bindActivitiesToGpus({ train: async (call: { inputs: TrainInput; resources?: { gpu?: number } }) => trainModel(deps, call.inputs) }, pool);
    const saved = process.env.CUDA_VISIBLE_DEVICES;
    process.env.CUDA_VISIBLE_DEVICES = 'from-the-process';
    let out: TrainOutput;
    try {
      out = (await new MockActivityEnvironment().run(() => bound.train({ inputs: input, resources: { gpu: 2 } }))) as TrainOutput;
    } finally {
      if (saved === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
      else process.env.CUDA_VISIBLE_DEVICES = saved;
    }
    expect(fs.readFileSync(seen, 'utf8')).toBe(`${gpu(0).uuid},${gpu(1).uuid}`);
    expect(out.device).toBe(`gpu ${gpu(0).uuid},${gpu(1).uuid} (0: NVIDIA H100 80GB HBM3, 1: NVIDIA H100 80GB HBM3)`);

    // One GPU (the default): the lease's, not the process's CUDA_VISIBLE_DEVICES.
    const single = (await new MockActivityEnvironment().run(() => bound.train({ inputs: input }))) as TrainOutput;
    expect(single.device).toBe(`gpu ${gpu(0).uuid} (0: NVIDIA H100 80GB HBM3)`);
    expect(fs.readFileSync(seen, 'utf8')).toBe(gpu(0).uuid);
    // On the CPU (--allow-cpu, or a CPU worker): cpu.
    const cpu = bindActivitiesToGpus({ train: async (call: { inputs: TrainInput }) => trainModel(deps, call.inputs) }, 'cpu');
    expect(((await new MockActivityEnvironment().run(() => cpu.train({ inputs: input }))) as TrainOutput).device).toBe('cpu');
    expect(describeDevice(undefined)).toBe('cpu');
  });

  test('a thread trainer’s thread sees the leased GPUs in its CUDA_VISIBLE_DEVICES', async () => {
    const pool = new GpuPool([gpu(0), gpu(1)]);
    const module = path.join(__dirname, '..', 'fixtures', 'thread-env.cjs');
    const done = await pool.run(
      () => runInThread<{ type: 'done'; cudaVisibleDevices?: string }>({ module, exportName: 'report', job: {}, signal: new AbortController().signal, onMessage: () => undefined }),
      { gpus: 2 },
    );
    expect(done.cudaVisibleDevices).toBe(`${gpu(0).uuid},${gpu(1).uuid}`);
    expect(gpuChildEnv({}).CUDA_VISIBLE_DEVICES).toBe('');
  });
});

test('the plugin gives every Worker on a GPU pool’s queues that pool’s one slot supplier, and leaves a Worker’s own settings alone', () => {
  const pool = new GpuPool([gpu(0)]);
  const plugin = new MlopsPlugin({ env: {}, database: { db: {} as Kysely<Database>, schema: 'mlops' }, artifacts: new LocalArtifactStore(os.tmpdir()), gpus: pool, migrate: false });
  const q = plugin.taskQueues;
  const generic = plugin.configureWorker({ taskQueue: q.gpu });
  const byClass = plugin.configureWorker({ taskQueue: `${q.gpu}-h100`, maxConcurrentWorkflowTaskExecutions: 7 });
  expect(generic.maxConcurrentActivityTaskExecutions).toBeUndefined();
  expect((generic.tuner as TunerHolder).activityTaskSlotSupplier).toBe(pool.slotSupplier);
  expect((byClass.tuner as TunerHolder).activityTaskSlotSupplier).toBe(pool.slotSupplier);
  expect((byClass.tuner as TunerHolder).workflowTaskSlotSupplier).toEqual({ type: 'fixed-size', numSlots: 7 });
  expect(byClass.maxConcurrentWorkflowTaskExecutions).toBeUndefined();
  // A Worker's own concurrency settings win; CPU and control Workers get no tuner of ours.
  const own = plugin.configureWorker({ taskQueue: q.gpu, maxConcurrentActivityTaskExecutions: 3 });
  expect([own.maxConcurrentActivityTaskExecutions, own.tuner]).toEqual([3, undefined]);
  expect(plugin.configureWorker({ taskQueue: q.cpu }).tuner).toBeUndefined();
  // Serving the GPU queues on the CPU: one activity at a time per Worker, as before.
  const onCpu = new MlopsPlugin({ env: {}, database: { db: {} as Kysely<Database>, schema: 'mlops' }, artifacts: new LocalArtifactStore(os.tmpdir()), gpus: 'cpu', migrate: false });
  const cpuWorker = onCpu.configureWorker({ taskQueue: q.gpu });
  expect([cpuWorker.maxConcurrentActivityTaskExecutions, cpuWorker.tuner]).toEqual([1, undefined]);
});
