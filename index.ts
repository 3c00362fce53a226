/**
 * temporal-mlops: continuous training, delivery and monitoring for your own Temporal workers.
 * The root export is the plugin and its options; `temporal-mlops/workflows` holds only
 * workflow-safe code, `temporal-mlops/client` typed access, `temporal-mlops/model-server` the
 * Open Inference Protocol server.
 */
export { MlopsPlugin, mlopsPlugin, workflowsEntry, PLUGIN_NAME, type MlopsPluginOptions, type DatabaseOption, type ArtifactsOption } from './workers/plugin';
export { discoverGpuPool } from './workers/start';
export { GpuPool } from './activities/gpu-context';
export { MlopsClient } from './client/api';
export { DEFAULT_TASK_QUEUES, resolveTaskQueues, type TaskQueues } from './workflows/contracts/task-queues';
export type { ArtifactStore } from './infra/artifacts';
export type { TracingOptions } from './infra/tracing';
export { CheckpointRefused, defineTrainer, type Trainer, type TrainerContext, type TrainedModel } from './activities/training/trainers/types';
