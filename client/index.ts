/** `temporal-mlops/client`: typed starts, signals and queries of our workflows. */
export { MlopsClient } from './api';
export type { TrainingResult } from '../workflows/continuous-training';
export type { LifecyclePolicyInput, LifecycleStatus, NewDataRequest, RetrainOutcome, RetrainRequest } from '../workflows/contracts/lifecycle';
export { requestRetrain, signalLifecycle, type RetrainAnswer } from './lifecycle';
export type { MonitoringStatus } from '../workflows/monitoring';
export type { PipelineStatus } from '../workflows/pipeline';
export type { PromotionInput, PromotionStatus } from '../workflows/promotion';
export type { TaskQueues } from '../workflows/contracts/task-queues';
export type { ResumeOverrides, TrainingSpecInput } from '../workflows/contracts/training-spec';
