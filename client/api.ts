import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { continuousTraining, modelLifecycle, monitoring, promotion } from '../workflows';
import { abortSignal, resumeSignal, trainingStatusQuery, type TrainingResult } from '../workflows/continuous-training';
import { lifecycleWorkflowId, monitoringWorkflowId, promotionWorkflowId } from '../workflows/contracts/names';
import {
  lifecycleStatusQuery,
  newDataSignal,
  retrainRequest,
  retrainSignal,
  setPolicySignal,
  type LifecyclePolicyInput,
  type LifecycleStatus,
  type NewDataRequest,
  type RetrainRequest,
} from '../workflows/contracts/lifecycle';
import type { MonitoringStatus } from '../workflows/monitoring';
import { requestRetrain, type RetrainAnswer } from './lifecycle';
import { monitoringStatusQuery } from '../workflows/monitoring';
import type { PipelineStatus } from '../workflows/pipeline';
import { approveSignal, promotionStatusQuery, rejectSignal, rollbackSignal, type PromotionInput, type PromotionStatus } from '../workflows/promotion';
import { resolveTaskQueues, type TaskQueues } from '../workflows/contracts/task-queues';
import type { ResumeOverrides, TrainingSpecInput } from '../workflows/contracts/training-spec';

/**
 * Typed access to our workflows from a Temporal client: starts by function reference with
 * typed arguments, and the signals and queries each workflow defines. Queue names come from
 * the same options as the worker plugin (`taskQueues`), or from the plugin itself.
 */
export class MlopsClient {
  readonly taskQueues: TaskQueues;

  constructor(
    readonly client: Client,
    opts: { taskQueues?: Partial<TaskQueues> & { prefix?: string } } = {},
  ) {
    this.taskQueues = resolveTaskQueues(opts.taskQueues);
  }

  /** Starts one run of the training pipeline; the spec is validated by the workflow. */
  startTraining(spec: TrainingSpecInput, opts: { workflowId?: string } = {}): Promise<WorkflowHandleWithFirstExecutionRunId<typeof continuousTraining>> {
    const workflowId = opts.workflowId ?? `train-${spec.model ?? 'model'}-${Date.now().toString(36)}`;
    return this.client.workflow.start(continuousTraining, { taskQueue: this.taskQueues.control, workflowId, args: [spec] });
  }

  /** Trains and waits for the registered (or rejected) version. */
  async train(spec: TrainingSpecInput, opts: { workflowId?: string } = {}): Promise<TrainingResult> {
    return (await this.startTraining(spec, opts)).result();
  }

  trainingStatus(workflowId: string): Promise<PipelineStatus> {
    return this.client.workflow.getHandle<typeof continuousTraining>(workflowId).query(trainingStatusQuery);
  }

  /** Re-runs the step a paused training failed at, with optional overrides. */
  resumeTraining(workflowId: string, overrides?: ResumeOverrides): Promise<void> {
    return this.client.workflow.getHandle<typeof continuousTraining>(workflowId).signal(resumeSignal, overrides);
  }

  abortTraining(workflowId: string, reason?: string): Promise<void> {
    return this.client.workflow.getHandle<typeof continuousTraining>(workflowId).signal(abortSignal, { reason });
  }

  /** Starts a promotion; its id is `promotion-<model>`, so a model has one at a time. */
  startPromotion(input: PromotionInput): Promise<WorkflowHandleWithFirstExecutionRunId<typeof promotion>> {
    return this.client.workflow.start(promotion, { taskQueue: this.taskQueues.control, workflowId: promotionWorkflowId(input.model), args: [input] });
  }

  promotion(model: string): WorkflowHandle<typeof promotion> {
    return this.client.workflow.getHandle<typeof promotion>(promotionWorkflowId(model));
  }

  promotionStatus(model: string): Promise<PromotionStatus> {
    return this.promotion(model).query(promotionStatusQuery);
  }

  approve(model: string, by?: string): Promise<void> {
    return this.promotion(model).signal(approveSignal, { by });
  }

  reject(model: string, reason?: string, by?: string): Promise<void> {
    return this.promotion(model).signal(rejectSignal, { by, reason });
  }

  rollback(model: string, reason?: string): Promise<void> {
    return this.promotion(model).signal(rollbackSignal, { reason });
  }

  /**
   * A retrain, as an Update-with-start of the model's lifecycle workflow (`model/<name>`),
   * answered with what happened: started (with the training's workflow id), duplicate,
   * coalesced or deferred. `policy` applies only when this call starts the lifecycle.
   */
  retrain(model: string, request: RetrainRequest, opts: { policy?: LifecyclePolicyInput; timeoutMs?: number } = {}): Promise<RetrainAnswer> {
    return requestRetrain(this.client, model, retrainRequest.parse(request), { ...opts, taskQueue: this.taskQueues.control });
  }

  /** The same request as a signal (fire and forget), as the Temporal CLI sends it. */
  signalRetrain(model: string, request: RetrainRequest, policy?: LifecyclePolicyInput): Promise<WorkflowHandle<typeof modelLifecycle>> {
    return this.client.workflow.signalWithStart(modelLifecycle, {
      workflowId: lifecycleWorkflowId(model),
      taskQueue: this.taskQueues.control,
      args: [{ model, ...(policy ? { policy } : {}) }],
      signal: retrainSignal,
      signalArgs: [request],
    });
  }

  newData(model: string, request: NewDataRequest, policy?: LifecyclePolicyInput): Promise<WorkflowHandle<typeof modelLifecycle>> {
    return this.client.workflow.signalWithStart(modelLifecycle, {
      workflowId: lifecycleWorkflowId(model),
      taskQueue: this.taskQueues.control,
      args: [{ model, ...(policy ? { policy } : {}) }],
      signal: newDataSignal,
      signalArgs: [request],
    });
  }

  setPolicy(model: string, policy: LifecyclePolicyInput): Promise<WorkflowHandle<typeof modelLifecycle>> {
    return this.client.workflow.signalWithStart(modelLifecycle, {
      workflowId: lifecycleWorkflowId(model),
      taskQueue: this.taskQueues.control,
      args: [{ model, policy }],
      signal: setPolicySignal,
      signalArgs: [policy],
    });
  }

  lifecycleStatus(model: string): Promise<LifecycleStatus> {
    return this.client.workflow.getHandle<typeof modelLifecycle>(lifecycleWorkflowId(model)).query(lifecycleStatusQuery);
  }

  monitoringStatus(model: string): Promise<MonitoringStatus> {
    return this.client.workflow.getHandle<typeof monitoring>(monitoringWorkflowId(model)).query(monitoringStatusQuery);
  }
}
