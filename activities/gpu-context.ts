import { AsyncLocalStorage } from 'node:async_hooks';
import { asyncLocalStorage as activityContext } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivitySlotInfo, CustomSlotSupplier, SlotMarkUsedContext, SlotPermit, SlotReleaseContext, SlotReserveContext, TunerHolder } from '@temporalio/worker';

export interface Gpu {
  index: number;
  uuid: string;
  name: string;
  memoryMiB: number;
}

export interface GpuLease {
  /** The first (or only) GPU leased. */
  gpu: Gpu;
  /** Every GPU leased (`resources.gpu` of them), in the pool's order. */
  gpus: Gpu[];
  /** Value for CUDA_VISIBLE_DEVICES in a child process: the GPUs' UUIDs, comma-separated (stable across reorderings). */
  cudaVisibleDevices: string;
}

/** Error type of a step that asks for more GPUs than its worker has. */
export const INSUFFICIENT_GPUS = 'InsufficientGpus';

const current = new AsyncLocalStorage<GpuLease | 'cpu'>();

/** The GPUs the running activity was given; `undefined` outside a GPU worker or on `--allow-cpu`. */
export function currentGpu(): GpuLease | undefined {
  const lease = current.getStore();
  return lease === 'cpu' ? undefined : lease;
}

/** Environment for a child process (or worker thread) of a GPU activity: pinned to its GPUs, or to none. */
export function gpuChildEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const lease = currentGpu();
  return { ...base, CUDA_VISIBLE_DEVICES: lease ? lease.cudaVisibleDevices : '' };
}

function deviceId(g: Gpu): string {
  return g.uuid || String(g.index);
}

/** The device a lineage records: `gpu <uuid>[,<uuid>] (<index>: <name>, …)`, or `cpu`. */
export function describeDevice(lease: GpuLease | undefined = currentGpu()): string {
  if (!lease) return 'cpu';
  return `gpu ${lease.gpus.map(deviceId).join(',')} (${lease.gpus.map((g) => `${g.index}: ${g.name}`).join(', ')})`;
}

/** How many GPUs an activity call asks for: `resources.gpu` of its first argument (the train step's call), else 1. */
export function gpusRequested(args: readonly unknown[]): number {
  const first = args[0];
  if (!first || typeof first !== 'object') return 1;
  const n = (first as { resources?: { gpu?: unknown } }).resources?.gpu;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : 1;
}

export interface GpuPoolOptions {
  /**
   * A poller of a queue whose last poll came back empty waits behind pollers of queues that
   * had work, up to this long, before it gets a free GPU anyway (default 30 s). Keeps a free
   * GPU from sitting in an empty queue's long poll while the other queue has a backlog.
   */
  idleQueueWaitMs?: number;
  now?: () => number;
}

interface Permit extends SlotPermit {
  gpuPermit: number;
  queue: string;
}

interface PermitWaiter {
  queue: string;
  since: number;
  resolve: (permit: Permit) => void;
}

interface LeaseWaiter {
  count: number;
  resolve: (taken: { gpus: Gpu[]; claimed: boolean }) => void;
}

export interface GpuPoolStats {
  /** Slots reserved by the workers' pollers (a poll in flight, or a task running), at most `size`. */
  permits: number;
  /** Most activity tasks started (slots marked used and not yet released) at once. */
  maxStarted: number;
  /** Leases granted, and how many of them had to wait for GPUs. */
  leases: number;
  leaseWaits: number;
}

/**
 * The GPUs of one worker process, shared by every Worker polling a GPU queue (the generic GPU
 * queue and the GPU-class queue). Two parts, one count:
 * - `slotSupplier`, the Temporal activity slot supplier of those Workers: a Worker polls for a
 *   GPU task only after it reserved a slot here, and a slot is handed out only while a GPU is
 *   neither leased nor promised to another slot, so the Workers together never have more
 *   started GPU activities than there are GPUs, and a task never waits on the worker without a
 *   GPU for it (its heartbeat timeout could fire);
 * - leases, which say WHICH GPUs an activity runs on: `resources.gpu` of them, FIFO. An activity
 *   that asks for N GPUs holds one Temporal slot and waits here (heartbeating) until N are free;
 *   while it waits no slot is handed out, so nothing new starts ahead of it.
 * Without the supplier (a Worker configured with its own tuner or
 * maxConcurrentActivityTaskExecutions), leases alone still keep one GPU to one activity.
 */
export class GpuPool {
  private readonly free: Gpu[];
  private readonly leaseWaiters: LeaseWaiter[] = [];
  private readonly permitWaiters: PermitWaiter[] = [];
  private readonly permitState = new Map<number, { queue: string; used: boolean }>();
  /** Queues whose last slot came back unused (an empty long poll). */
  private readonly idleQueues = new Set<string>();
  private nextPermit = 1;
  private reservedPermits = 0;
  private usedPermits = 0;
  /** Leases that stand in for a used slot (the slot's GPU is the lease's first). */
  private claimed = 0;
  private readonly idleQueueWaitMs: number;
  private readonly now: () => number;
  private readonly counters = { maxStarted: 0, leases: 0, leaseWaits: 0 };
  /** The activity slot supplier for every Worker on this pool's GPU queues (see `workerTuner`). */
  readonly slotSupplier: CustomSlotSupplier<ActivitySlotInfo>;

  constructor(
    readonly gpus: Gpu[],
    opts: GpuPoolOptions = {},
  ) {
    this.free = [...gpus];
    this.idleQueueWaitMs = opts.idleQueueWaitMs ?? 30_000;
    this.now = opts.now ?? Date.now;
    this.slotSupplier = {
      type: 'custom',
      reserveSlot: (ctx, signal) => this.reserveSlot(ctx, signal),
      tryReserveSlot: (ctx) => this.tryReserveSlot(ctx),
      markSlotUsed: (ctx) => this.markSlotUsed(ctx),
      releaseSlot: (ctx) => this.releaseSlot(ctx),
    };
  }

  get size(): number {
    return this.gpus.length;
  }

  /** GPUs leased right now. */
  get busy(): number {
    return this.gpus.length - this.free.length;
  }

  get stats(): GpuPoolStats {
    return { permits: this.reservedPermits + this.usedPermits, ...this.counters };
  }

  /**
   * The tuner for a Worker on one of this pool's GPU queues: activity slots from the shared
   * supplier; workflow, local-activity and Nexus slots fixed-size (the SDK's defaults unless given).
   */
  workerTuner(sizes: { workflowTasks?: number; localActivities?: number; nexusTasks?: number } = {}): TunerHolder {
    return {
      activityTaskSlotSupplier: this.slotSupplier,
      workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: sizes.workflowTasks ?? 40 },
      localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: sizes.localActivities ?? 100 },
      nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: sizes.nexusTasks ?? 100 },
    };
  }

  /** GPUs promised or in use: a slot not yet holding a lease counts one, a lease its GPUs. */
  private demand(): number {
    return this.reservedPermits + Math.max(0, this.usedPermits - this.claimed) + this.busy;
  }

  private canGrantPermit(): boolean {
    return this.leaseWaiters.length === 0 && this.demand() < this.size;
  }

  private grantPermit(queue: string): Permit {
    const permit: Permit = { gpuPermit: this.nextPermit++, queue };
    this.permitState.set(permit.gpuPermit, { queue, used: false });
    this.reservedPermits++;
    return permit;
  }

  private reserveSlot(ctx: SlotReserveContext, signal: AbortSignal): Promise<SlotPermit> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<SlotPermit>((resolve, reject) => {
      const waiter: PermitWaiter = {
        queue: ctx.taskQueue,
        since: this.now(),
        resolve: (permit) => {
          signal.removeEventListener('abort', onAbort);
          resolve(permit);
        },
      };
      const onAbort = () => {
        const i = this.permitWaiters.indexOf(waiter);
        if (i >= 0) this.permitWaiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.permitWaiters.push(waiter);
      this.pump();
    });
  }

  private tryReserveSlot(ctx: SlotReserveContext): SlotPermit | null {
    if (this.permitWaiters.length > 0 || !this.canGrantPermit()) return null;
    return this.grantPermit(ctx.taskQueue);
  }

  private markSlotUsed(ctx: SlotMarkUsedContext<ActivitySlotInfo>): void {
    const state = this.permitState.get((ctx.permit as Permit).gpuPermit);
    if (!state || state.used) return;
    state.used = true;
    this.reservedPermits--;
    this.usedPermits++;
    this.idleQueues.delete(state.queue);
    this.counters.maxStarted = Math.max(this.counters.maxStarted, this.usedPermits);
  }

  private releaseSlot(ctx: SlotReleaseContext<ActivitySlotInfo>): void {
    const id = (ctx.permit as Permit).gpuPermit;
    const state = this.permitState.get(id);
    if (!state) return;
    this.permitState.delete(id);
    if (state.used) {
      this.usedPermits--;
    } else {
      // A poll that came back empty: that queue had no work for a whole long poll.
      this.reservedPermits--;
      this.idleQueues.add(state.queue);
    }
    this.pump();
  }

  /** The permit waiter to serve next: FIFO, but a queue that just came back empty yields to busy ones (for a while). */
  private nextPermitWaiter(): PermitWaiter | undefined {
    const oldest = this.permitWaiters[0];
    if (!oldest || !this.idleQueues.has(oldest.queue)) return oldest;
    const busy = this.permitWaiters.find((w) => !this.idleQueues.has(w.queue));
    if (!busy || this.now() - oldest.since >= this.idleQueueWaitMs) return oldest;
    return busy;
  }

  /** Hands free GPUs to lease waiters (FIFO), then free capacity to pollers. */
  private pump(): void {
    while (this.leaseWaiters.length > 0 && this.free.length >= this.leaseWaiters[0]!.count) {
      const w = this.leaseWaiters.shift()!;
      w.resolve(this.take(w.count));
    }
    while (this.permitWaiters.length > 0 && this.canGrantPermit()) {
      const w = this.nextPermitWaiter()!;
      this.permitWaiters.splice(this.permitWaiters.indexOf(w), 1);
      w.resolve(this.grantPermit(w.queue));
    }
  }

  /**
   * Takes `count` free GPUs. The lease stands in for one used slot when there is one not yet
   * leased (slots and leases are counted, not paired: any started task's slot will do); without
   * one (a Worker with its own concurrency settings) it counts on its own.
   */
  private take(count: number): { gpus: Gpu[]; claimed: boolean } {
    const gpus = this.free.splice(0, count);
    const claimed = this.usedPermits - this.claimed > 0;
    if (claimed) this.claimed++;
    this.counters.leases++;
    return { gpus, claimed };
  }

  /** Leases `count` GPUs, waiting (FIFO) until they are free; refuses a count over the pool's size. */
  async lease(count: number, opts: { signal?: AbortSignal; onWait?: () => () => void } = {}): Promise<{ gpus: Gpu[]; release: () => void }> {
    if (count > this.size) {
      throw ApplicationFailure.create({
        message: `resources.gpu: the step asks for ${count} GPUs but this worker has ${this.size}; use resources.gpu ≤ ${this.size}, or route the step (resources.gpuClass) to workers with ${count} or more GPUs`,
        type: INSUFFICIENT_GPUS,
        nonRetryable: true,
        details: [{ field: 'resources.gpu', requested: count, available: this.size }],
      });
    }
    let taken: { gpus: Gpu[]; claimed: boolean };
    if (this.leaseWaiters.length === 0 && this.free.length >= count) {
      taken = this.take(count);
    } else {
      this.counters.leaseWaits++;
      const stopWaiting = opts.onWait?.();
      try {
        taken = await new Promise<{ gpus: Gpu[]; claimed: boolean }>((resolve, reject) => {
          const waiter: LeaseWaiter = { count, resolve };
          const onAbort = () => {
            const i = this.leaseWaiters.indexOf(waiter);
            if (i >= 0) this.leaseWaiters.splice(i, 1);
            this.pump();
            reject(opts.signal!.reason);
          };
          if (opts.signal?.aborted) return reject(opts.signal.reason);
          opts.signal?.addEventListener('abort', onAbort, { once: true });
          waiter.resolve = (got) => {
            opts.signal?.removeEventListener('abort', onAbort);
            resolve(got);
          };
          this.leaseWaiters.push(waiter);
        });
      } finally {
        stopWaiting?.();
      }
    }
    const { gpus, claimed } = taken;
    let released = false;
    return {
      gpus,
      release: () => {
        if (released) return;
        released = true;
        if (claimed) this.claimed--;
        this.free.push(...gpus);
        this.free.sort((a, b) => this.gpus.indexOf(a) - this.gpus.indexOf(b));
        this.pump();
      },
    };
  }

  /** Runs `fn` holding `gpus` GPUs of the pool (default 1): `currentGpu()` and `gpuChildEnv()` name them. */
  async run<T>(fn: () => Promise<T>, opts: { gpus?: number; signal?: AbortSignal; onWait?: () => () => void } = {}): Promise<T> {
    const lease = await this.lease(opts.gpus ?? 1, opts);
    try {
      return await current.run({ gpu: lease.gpus[0]!, gpus: lease.gpus, cudaVisibleDevices: lease.gpus.map(deviceId).join(',') }, fn);
    } finally {
      lease.release();
    }
  }
}

/**
 * While an activity waits for its GPUs: heartbeat every few seconds (with the details its last
 * attempt left, so a checkpoint reference survives) and stop waiting when it is cancelled.
 */
function activityWaitHooks(): { signal?: AbortSignal; onWait?: () => () => void } {
  const ctx = activityContext.getStore();
  if (!ctx) return {};
  return {
    signal: ctx.cancellationSignal,
    onWait: () => {
      const beat = () => ctx.heartbeat(ctx.info.heartbeatDetails);
      beat();
      const timer = setInterval(beat, 5_000);
      return () => clearInterval(timer);
    },
  };
}

/**
 * Wraps every activity so it runs holding GPUs from the pool (or explicitly none, on CPU): as
 * many as its call asks for in `resources.gpu` (see `gpusRequested`), else one.
 */
export function bindActivitiesToGpus<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T, pool: GpuPool | 'cpu'): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = (...args: never[]) => {
      if (pool === 'cpu') return current.run('cpu', () => fn(...args));
      // Already holding GPUs (one bound activity calling another): no second lease.
      if (current.getStore()) return fn(...args);
      return pool.run(() => fn(...args), { gpus: gpusRequested(args), ...activityWaitHooks() });
    };
  }
  return wrapped as T;
}
