/**
 * Names shared by workflows, workers and clients: task queues, workflow types, signals and
 * queries. Kept free of any import that is not allowed inside the workflow sandbox.
 */

export {
  DEFAULT_TASK_QUEUES,
  DEFAULT_TASK_QUEUES as TASK_QUEUES,
  GPU_CLASS_PATTERN,
  gpuClassQueue,
  resolveTaskQueues,
  taskQueues,
  type TaskQueues,
} from './task-queues';

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
/** The same request as an Update: validated before it is recorded, answered with what happened. */
export const RETRAIN_UPDATE = 'requestRetrain';
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
