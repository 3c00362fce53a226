/**
 * Names shared by workflows, workers and clients: task queues, workflow types, signals and
 * queries. Kept free of any import that is not allowed inside the workflow sandbox.
 */

export const TASK_QUEUES = {
  control: 'mlops-control',
  cpu: 'mlops-cpu',
  gpu: 'mlops-gpu',
} as const;

/** A GPU class names a pool of identical GPUs, e.g. `h100` → queue `mlops-gpu-h100`. */
export const GPU_CLASS_PATTERN = /^[a-z0-9][a-z0-9-]{0,30}$/;

export function gpuClassQueue(gpuClass: string): string {
  if (!GPU_CLASS_PATTERN.test(gpuClass)) {
    throw new Error(`gpu class must match ${GPU_CLASS_PATTERN}, got ${JSON.stringify(gpuClass)}`);
  }
  return `${TASK_QUEUES.gpu}-${gpuClass}`;
}

export type QueueKind = keyof typeof TASK_QUEUES;

/** Every workflow answers `status` with a JSON-friendly snapshot. */
export const STATUS_QUERY = 'status';

/** Pipelines (continuousTraining, noopPipeline) share these. */
export const RESUME_SIGNAL = 'resume';
export const ABORT_SIGNAL = 'abort';
export const CONTINUOUS_TRAINING = 'continuousTraining';

/** The promotion workflow's signals. */
export const APPROVE_SIGNAL = 'approve';
export const REJECT_SIGNAL = 'reject';
export const ROLLBACK_SIGNAL = 'rollback';

/** One workflow id per model: Temporal runs at most one workflow per id, so promotions of a model never interleave. */
export function promotionWorkflowId(model: string): string {
  return `promotion-${model}`;
}
