import os from 'node:os';
import { bundleWorkflowCode, Worker, type WorkerOptions, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createActivities, type Activities } from '../../activities';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';

/**
 * In-process workers for integration tests: the workflow bundle is built once per test file,
 * each test runs its own workers with real activities — optionally wrapped, to count calls or
 * inject a fault — on the real stores.
 */

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** A logger for bundleWorkflowCode that prints nothing (webpack's output is noise in tests). */
export const SILENT_LOGGER = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as never;

export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: SILENT_LOGGER });
  return bundle;
}

export type ActivityWrapper = (name: string, fn: (...args: unknown[]) => Promise<unknown>, queue: string) => (...args: unknown[]) => Promise<unknown>;

/** Counts calls per activity name (all queues), for "no step ran twice" assertions. */
export function callCounter(): { counts: Record<string, number>; wrap: ActivityWrapper } {
  const counts: Record<string, number> = {};
  return {
    counts,
    wrap: (name, fn) => async (...args) => {
      counts[name] = (counts[name] ?? 0) + 1;
      return fn(...args);
    },
  };
}

export async function withTestWorkers<T>(
  env: TestWorkflowEnvironment,
  runtime: WorkerRuntime,
  fn: () => Promise<T>,
  opts: { queues?: string[]; wrap?: ActivityWrapper; workerOptions?: (queue: string) => Partial<WorkerOptions> } = {},
): Promise<T> {
  const queues = opts.queues ?? [TASK_QUEUES.control, TASK_QUEUES.cpu, TASK_QUEUES.gpu];
  const workers: Worker[] = [];
  for (const queue of queues) {
    const identity = `${queue}@${os.hostname()}:test`;
    let activities: Record<string, (...args: unknown[]) => Promise<unknown>> = createActivities({
      db: runtime.db,
      artifacts: runtime.artifacts,
      config: runtime.config,
      codeVersion: runtime.codeVersion,
      worker: { identity, queue },
    }) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    if (opts.wrap) activities = Object.fromEntries(Object.entries(activities).map(([name, f]) => [name, opts.wrap!(name, f, queue)]));
    workers.push(
      await Worker.create({
        connection: env.nativeConnection,
        namespace: env.namespace ?? 'default',
        taskQueue: queue,
        identity,
        activities: activities as unknown as Activities,
        ...(queue === TASK_QUEUES.control ? { workflowBundle: await workflowBundle() } : {}),
        ...opts.workerOptions?.(queue),
      }),
    );
  }
  const running = Promise.all(workers.map((w) => w.run()));
  try {
    return await fn();
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running;
  }
}
