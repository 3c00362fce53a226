import { AsyncLocalStorage } from 'node:async_hooks';

export interface Gpu {
  index: number;
  uuid: string;
  name: string;
  memoryMiB: number;
}

export interface GpuLease {
  gpu: Gpu;
  /** Value for CUDA_VISIBLE_DEVICES in a child process (the GPU's UUID: stable across reorderings). */
  cudaVisibleDevices: string;
}

const current = new AsyncLocalStorage<GpuLease | 'cpu'>();

/** The GPU the running activity was given; `undefined` outside a GPU worker or on `--allow-cpu`. */
export function currentGpu(): GpuLease | undefined {
  const lease = current.getStore();
  return lease === 'cpu' ? undefined : lease;
}

/** Environment for a child process of a GPU activity: pinned to its GPU, or to none. */
export function gpuChildEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const lease = currentGpu();
  return { ...base, CUDA_VISIBLE_DEVICES: lease ? lease.cudaVisibleDevices : '' };
}

/**
 * Hands out GPUs one activity each. A worker polling both its class queue and the generic GPU
 * queue shares one pool between the two, so at most one GPU activity runs per GPU; a task that
 * arrives while all are busy waits here for the next free one (FIFO).
 */
export class GpuPool {
  private readonly free: Gpu[];
  private readonly waiters: Array<(gpu: Gpu) => void> = [];

  constructor(readonly gpus: Gpu[]) {
    this.free = [...gpus];
  }

  get size(): number {
    return this.gpus.length;
  }

  get busy(): number {
    return this.gpus.length - this.free.length;
  }

  private acquire(): Promise<Gpu> {
    const gpu = this.free.shift();
    if (gpu) return Promise.resolve(gpu);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(gpu: Gpu): void {
    const next = this.waiters.shift();
    if (next) next(gpu);
    else this.free.push(gpu);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const gpu = await this.acquire();
    try {
      return await current.run({ gpu, cudaVisibleDevices: gpu.uuid || String(gpu.index) }, fn);
    } finally {
      this.release(gpu);
    }
  }
}

/** Wraps every activity so it runs holding a GPU from the pool (or explicitly none, on CPU). */
export function bindActivitiesToGpus<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T, pool: GpuPool | 'cpu'): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = (...args: never[]) => (pool === 'cpu' ? current.run('cpu', () => fn(...args)) : pool.run(() => fn(...args)));
  }
  return wrapped as T;
}
