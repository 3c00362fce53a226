import { WithStartWorkflowOperation, WorkflowUpdateStage, type Client, type WorkflowHandle } from '@temporalio/client';
import { modelLifecycle } from '../workflows/lifecycle';
import { NEW_DATA_SIGNAL, RETRAIN_SIGNAL, SET_POLICY_SIGNAL, lifecycleWorkflowId } from '../workflows/contracts/names';
import { retrainUpdate, type LifecyclePolicyInput, type NewDataRequest, type RetrainOutcome, type RetrainRequest } from '../workflows/contracts/lifecycle';
import { DEFAULT_TASK_QUEUES } from '../workflows/contracts/task-queues';

/**
 * Every trigger reaches a model through its lifecycle workflow (`model/<name>`): the first one
 * starts it, later ones only reach it. `policy` is used only when this call starts the
 * workflow; a running one keeps its own (use `setPolicy`).
 */
export async function signalLifecycle(
  client: Client,
  model: string,
  signal: 'retrain' | 'newData' | 'setPolicy',
  payload: RetrainRequest | NewDataRequest | LifecyclePolicyInput,
  policy?: LifecyclePolicyInput,
  taskQueue: string = DEFAULT_TASK_QUEUES.control,
): Promise<WorkflowHandle> {
  const name = signal === 'retrain' ? RETRAIN_SIGNAL : signal === 'newData' ? NEW_DATA_SIGNAL : SET_POLICY_SIGNAL;
  return client.workflow.signalWithStart(modelLifecycle, {
    workflowId: lifecycleWorkflowId(model),
    taskQueue,
    args: [{ model, ...(policy ? { policy } : {}) }],
    signal: name,
    signalArgs: [payload],
  });
}

export interface RetrainAnswer {
  workflowId: string;
  /** What the lifecycle did; absent when it accepted the request but did not answer within the timeout. */
  answer?: RetrainOutcome;
}

/**
 * A retrain as an Update-with-start of the model's lifecycle: the validator rejects a bad request
 * before it is recorded, and the answer says what happened — a training started (its id), a
 * duplicate, coalesced into the running training's follow-up, or deferred (cooldown or budget,
 * until when). Rejects if the lifecycle did not even accept the request within `timeoutMs`
 * (no control worker polling, say).
 */
export async function requestRetrain(
  client: Client,
  model: string,
  request: RetrainRequest,
  opts: { policy?: LifecyclePolicyInput; taskQueue?: string; timeoutMs?: number } = {},
): Promise<RetrainAnswer> {
  const workflowId = lifecycleWorkflowId(model);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const startWorkflowOperation = new WithStartWorkflowOperation(modelLifecycle, {
    workflowId,
    taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUES.control,
    args: [{ model, ...(opts.policy ? { policy: opts.policy } : {}) }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const accepted = client.workflow.startUpdateWithStart(retrainUpdate, { args: [request], waitForStage: WorkflowUpdateStage.ACCEPTED, startWorkflowOperation });
    const handle = await Promise.race([accepted, timeout]);
    if (handle === 'timeout') {
      accepted.catch(() => undefined);
      throw new Error(`${workflowId} did not accept the retrain within ${Math.round(timeoutMs / 1000)}s (is a worker polling ${opts.taskQueue ?? DEFAULT_TASK_QUEUES.control}?)`);
    }
    const result = handle.result();
    const answer = await Promise.race([result, timeout]);
    if (answer === 'timeout') {
      result.catch(() => undefined);
      return { workflowId };
    }
    return { workflowId, answer };
  } finally {
    clearTimeout(timer);
  }
}
