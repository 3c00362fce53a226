/** `temporal-mlops/client`: typed starts, signals and queries of our workflows. */
export { MlopsClient } from './api';
export type { TrainingResult } from '../workflows/continuous-training';
export type { LifecyclePolicyInput, LifecycleStatus, NewDataRequest, RetrainOutcome, RetrainRequest } from '../workflows/lifecycle-api';
export { requestRetrain, signalLifecycle, type RetrainAnswer } from './lifecycle';
export type { MonitoringStatus } from '../workflows/monitoring';
export type { PipelineStatus } from '../workflows/pipeline';
export type { PromotionInput, PromotionStatus } from '../workflows/promotion';
export type { TaskQueues } from '../workflows/task-queues';
export type { ResumeOverrides, TrainingSpecInput } from '../workflows/training-spec';
