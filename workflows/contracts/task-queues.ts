import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';

/**
 * The task queues our workflows route work to. The defaults are `mlops-control`, `mlops-cpu`
 * and `mlops-gpu`; a user's plugin options may rename them. The names reach the workflow
 * sandbox as code, not input: the plugin bundles a small module that calls
 * `configureTaskQueues` before any workflow module runs (see workers/plugin.ts), so a
 * replay with the same plugin options makes the same decisions.
 */
export interface TaskQueues {
  control: string;
  cpu: string;
  gpu: string;
}

export const DEFAULT_TASK_QUEUES: Readonly<TaskQueues> = Object.freeze({ control: 'mlops-control', cpu: 'mlops-cpu', gpu: 'mlops-gpu' });

/** A task queue name: what Temporal accepts, kept to characters that are safe in ids and logs. */
export const TASK_QUEUE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

/** A GPU class names a pool of identical GPUs, e.g. `h100` → queue `mlops-gpu-h100`. */
export const GPU_CLASS_PATTERN = /^[a-z0-9][a-z0-9-]{0,30}$/;

let configured: TaskQueues = { ...DEFAULT_TASK_QUEUES };

/** Queue names from a prefix: `acme-ml` → `acme-ml-control`, `acme-ml-cpu`, `acme-ml-gpu`. */
export function taskQueuesFromPrefix(prefix: string): TaskQueues {
  return { control: `${prefix}-control`, cpu: `${prefix}-cpu`, gpu: `${prefix}-gpu` };
}

/** Fills the gaps with the prefix's names (default prefix `mlops`) and checks every name. */
export function resolveTaskQueues(opts: Partial<TaskQueues> & { prefix?: string } = {}): TaskQueues {
  const base = taskQueuesFromPrefix(opts.prefix ?? 'mlops');
  const queues: TaskQueues = { control: opts.control ?? base.control, cpu: opts.cpu ?? base.cpu, gpu: opts.gpu ?? base.gpu };
  for (const [role, name] of Object.entries(queues)) {
    if (!TASK_QUEUE_PATTERN.test(name)) throw new TypeError(`taskQueues.${role}: ${JSON.stringify(name)} is not a valid task queue name`);
  }
  if (new Set(Object.values(queues)).size !== 3) throw new TypeError(`taskQueues: control, cpu and gpu must be three different queues (got ${JSON.stringify(queues)})`);
  return queues;
}

export function configureTaskQueues(queues: TaskQueues): void {
  configured = resolveTaskQueues(queues);
}

export function taskQueues(): Readonly<TaskQueues> {
  return configured;
}

export function gpuClassQueue(gpuClass: string, queues: Readonly<TaskQueues> = taskQueues()): string {
  if (!GPU_CLASS_PATTERN.test(gpuClass)) {
    throw new TypeError(`gpu class must match ${GPU_CLASS_PATTERN}, got ${JSON.stringify(gpuClass)}`);
  }
  return `${queues.gpu}-${gpuClass}`;
}

/**
 * `proxyActivities` whose options are read at the first call, not at module load, so a queue
 * name configured by the plugin's module is the one used.
 */
export function lazyActivities<T extends object>(options: () => ActivityOptions): T {
  let proxy: T | undefined;
  return new Proxy({} as T, {
    get: (_target, name) => {
      proxy ??= proxyActivities<T & Record<string, never>>(options()) as T;
      return (proxy as Record<string | symbol, unknown>)[name];
    },
  });
}
