import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import { lifecycleWorkflowId } from './contracts/names';
import { parseInput } from './input';
import { lifecyclePolicy, modelName } from './contracts/lifecycle';
import { signalOrStartLifecycle } from './lifecycle-signal';
import { versioning } from './contracts/versioning';

/**
 * The Temporal Schedules trigger: a schedule starts this small workflow on each firing, and it
 * hands a `retrain` to the model's lifecycle workflow (starting it if needed). The schedule
 * never starts `continuousTraining` itself, so cooldown, budget and "one training per model at
 * a time" hold for scheduled retrains too.
 */

export const scheduledRetrainInput = z
  .object({
    model: modelName,
    reason: z.string().min(1).max(400).optional(),
    /** Used only if this firing starts the lifecycle workflow; a running one keeps its own policy. */
    policy: lifecyclePolicy.optional(),
  })
  .strict();
export type ScheduledRetrainInput = z.input<typeof scheduledRetrainInput>;

export interface ScheduledRetrainResult {
  model: string;
  lifecycleWorkflowId: string;
  /** `started`: no lifecycle was running, this firing started one with the retrain as its first trigger. */
  action: 'signalled' | 'started';
  reason: string;
  dedupeKey: string;
}

// Worker Versioning: short-lived: it finishes on the build it started on.
setWorkflowOptions(versioning('PINNED'), scheduledRetrain);

export async function scheduledRetrain(raw: ScheduledRetrainInput): Promise<ScheduledRetrainResult> {
  const input = parseInput(scheduledRetrainInput, raw, 'scheduledRetrain');
  const { workflowId } = workflowInfo();
  // A schedule appends the firing time to the workflow id, so the id names this firing: a
  // retried or replayed firing sends the same key and the lifecycle drops the copy.
  const dedupeKey = `schedule:${workflowId}`.slice(0, 200);
  const reason = input.reason ?? `scheduled retrain (${workflowId})`;
  const action = await signalOrStartLifecycle(input.model, { retrain: { reason, source: 'schedule', dedupeKey } }, input.policy);
  return { model: input.model, lifecycleWorkflowId: lifecycleWorkflowId(input.model), action, reason, dedupeKey };
}
