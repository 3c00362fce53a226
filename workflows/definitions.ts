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

/** The per-model lifecycle workflow: the one stable address every trigger signals. */
export const MODEL_LIFECYCLE = 'modelLifecycle';
export const MONITORING = 'monitoring';
export const SCHEDULED_RETRAIN = 'scheduledRetrain';
export const DATASET_WATCHER = 'datasetWatcher';

export const RETRAIN_SIGNAL = 'retrain';
export const NEW_DATA_SIGNAL = 'newData';
export const SET_POLICY_SIGNAL = 'setPolicy';
export const PAUSE_SIGNAL = 'pause';
export const SET_THRESHOLDS_SIGNAL = 'setThresholds';
export const LATEST_REPORT_QUERY = 'latestReport';

export function lifecycleWorkflowId(model: string): string {
  return `model/${model}`;
}
export function monitoringWorkflowId(model: string): string {
  return `monitoring/${model}`;
}
export function watcherWorkflowId(model: string): string {
  return `watch-data/${model}`;
}
