import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateStage, type Client, type WorkflowHandle } from '@temporalio/client';
import { modelLifecycle } from '../workflows/lifecycle';
import { NEW_DATA_SIGNAL, RETRAIN_SIGNAL, SET_POLICY_SIGNAL, lifecycleWorkflowId } from '../workflows/contracts/names';
import { retrainUpdate, type LifecyclePolicyInput, type NewDataRequest, type RetrainOutcome, type RetrainRequest } from '../workflows/contracts/lifecycle';
import { DEFAULT_TASK_QUEUES } from '../workflows/contracts/task-queues';

/**
 * Refused: the model has no lifecycle, and the request carried no policy to start one with.
 * Triggers never create models — only an explicit start with a policy does.
 */
export class NoLifecycleError extends Error {
  constructor(readonly model: string) {
    super(`no lifecycle for model ${model}: a trigger does not create one; start it with a policy (mlops policy --model ${model} --file policy.json, or mlops retrain --model ${model} --policy policy.json)`);
    this.name = 'NoLifecycleError';
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof WorkflowNotFoundError || (err as { code?: number }).code === 5;
}

/**
 * Every trigger reaches a model through its lifecycle workflow (`model/<name>`). With a policy
 * (for `setPolicy`, the payload is one) the call starts the lifecycle if none runs; a running one
 * keeps its own. Without, it only reaches a running lifecycle: NoLifecycleError otherwise.
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
  const startPolicy = policy ?? (signal === 'setPolicy' ? (payload as LifecyclePolicyInput) : undefined);
  if (startPolicy === undefined) {
    const handle = client.workflow.getHandle(lifecycleWorkflowId(model));
    try {
      await handle.signal(name, payload);
    } catch (err) {
      if (isNotFound(err)) throw new NoLifecycleError(model);
      throw err;
    }
    return handle;
  }
  return client.workflow.signalWithStart(modelLifecycle, {
    workflowId: lifecycleWorkflowId(model),
    taskQueue,
    args: [{ model, policy: startPolicy }],
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
 * A retrain as an Update (with start, when a policy comes with it) of the model's lifecycle:
 * without a policy and without a running lifecycle it is refused (NoLifecycleError). The
 * validator rejects a bad request
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
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    // With a policy, Update-with-start; without, only a running lifecycle is asked.
    const accepted = opts.policy
      ? client.workflow.startUpdateWithStart(retrainUpdate, {
          args: [request],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
          startWorkflowOperation: new WithStartWorkflowOperation(modelLifecycle, {
            workflowId,
            taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUES.control,
            args: [{ model, policy: opts.policy }],
            workflowIdConflictPolicy: 'USE_EXISTING',
          }),
        })
      : client.workflow
          .getHandle<typeof modelLifecycle>(workflowId)
          .startUpdate(retrainUpdate, { args: [request], waitForStage: WorkflowUpdateStage.ACCEPTED })
          .catch((err: unknown) => {
            throw isNotFound(err) ? new NoLifecycleError(model) : err;
          });
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
