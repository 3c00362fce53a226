import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { z } from 'zod';
import type { PlatformActivities, ProbeResult } from '../activities/platform';
import { STATUS_QUERY } from './contracts/names';
import { GPU_CLASS_PATTERN, gpuClassQueue, taskQueues } from './contracts/task-queues';
import { parseInput } from './input';
import { versioning } from './contracts/versioning';

export const platformCheckInput = z
  .object({
    /** Also probe `mlops-gpu-<class>`. */
    gpuClass: z.string().regex(GPU_CLASS_PATTERN, 'must be lowercase letters, digits and dashes, e.g. h100').optional(),
    /** Leave out the GPU queues (for deployments without GPU workers). */
    skipGpu: z.boolean().default(false),
    /** How long a probe may wait for a worker to pick it up before the queue counts as unserved. */
    scheduleToStartTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict();

export type PlatformCheckInput = z.input<typeof platformCheckInput>;

export type QueueOutcome = { queue: string; ok: true; result: ProbeResult } | { queue: string; ok: false; error: string };

export interface PlatformCheckResult {
  checkId: string;
  ok: boolean;
  queues: QueueOutcome[];
}

export const platformCheckStatus = defineQuery<Record<string, string>>(STATUS_QUERY);

function describeFailure(queue: string, err: unknown, timeoutSeconds: number): string {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START) {
    return `no worker polled ${queue} within ${timeoutSeconds}s (is a worker for it running?)`;
  }
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

// Worker Versioning: short-lived: it finishes on the build it started on.
setWorkflowOptions(versioning('PINNED'), platformCheck);

/**
 * Runs one probe activity on every queue (control, CPU, GPU): each writes and reads back an
 * artifact by hash, writes and reads metadata rows, and runs a tiny ONNX model. The result says
 * which worker, on which host and device, served each queue.
 */
export async function platformCheck(rawInput: PlatformCheckInput = {}): Promise<PlatformCheckResult> {
  const input = parseInput(platformCheckInput, rawInput ?? {}, 'platformCheck');
  const checkId = workflowInfo().workflowId;
  const queues: string[] = [taskQueues().control, taskQueues().cpu];
  if (!input.skipGpu) {
    queues.push(taskQueues().gpu);
    if (input.gpuClass) queues.push(gpuClassQueue(input.gpuClass));
  }
  const state: Record<string, string> = Object.fromEntries(queues.map((q) => [q, 'scheduled']));
  setHandler(platformCheckStatus, () => state);

  const probe = (queue: string) =>
    proxyActivities<PlatformActivities>({
      taskQueue: queue,
      scheduleToStartTimeout: `${input.scheduleToStartTimeoutSeconds}s`,
      startToCloseTimeout: '2m',
      retry: { maximumAttempts: 3, initialInterval: '1s' },
    }).platformProbe({ checkId, queue });

  const outcomes = await Promise.all(
    queues.map(async (queue): Promise<QueueOutcome> => {
      try {
        const result = await probe(queue);
        state[queue] = `ok: ${result.worker} (${result.device})`;
        return { queue, ok: true, result };
      } catch (err) {
        const error = describeFailure(queue, err, input.scheduleToStartTimeoutSeconds);
        state[queue] = `failed: ${error}`;
        return { queue, ok: false, error };
      }
    }),
  );
  const summary: PlatformCheckResult = { checkId, ok: outcomes.every((o) => o.ok), queues: outcomes };
  await proxyActivities<PlatformActivities>({
    taskQueue: taskQueues().control,
    startToCloseTimeout: '30s',
    retry: { maximumAttempts: 5 },
  }).finishPlatformCheck({
    status: summary.ok ? 'succeeded' : 'failed',
    summary: outcomes.map((o) => (o.ok ? { queue: o.queue, worker: o.result.worker, device: o.result.device } : o)),
  });
  if (!summary.ok) {
    const failed = outcomes.filter((o): o is Extract<QueueOutcome, { ok: false }> => !o.ok);
    throw ApplicationFailure.nonRetryable(
      `platform check failed on ${failed.map((f) => `${f.queue}: ${f.error}`).join('; ')}`,
      'PlatformCheckFailed',
      summary,
    );
  }
  return summary;
}
