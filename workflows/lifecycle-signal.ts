import { ApplicationFailure, ParentClosePolicy, getExternalWorkflowHandle, patched, startChild, WorkflowIdReusePolicy } from '@temporalio/workflow';
import { MODEL_LIFECYCLE, lifecycleWorkflowId } from './contracts/names';
import { taskQueues } from './contracts/task-queues';
import { newDataSignal, retrainSignal, type LifecyclePolicyInput, type NewDataRequest, type RetrainRequest } from './contracts/lifecycle';

export type LifecycleMessage = { retrain: RetrainRequest } | { newData: NewDataRequest };

/** Starts the lifecycle, abandoned so it outlives the caller, with the message as its first input; false if it already runs. */
async function startLifecycle(model: string, message: LifecycleMessage, policy?: LifecyclePolicyInput): Promise<boolean> {
  try {
    await startChild(MODEL_LIFECYCLE, {
      workflowId: lifecycleWorkflowId(model),
      taskQueue: taskQueues().control,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      args: [{ model, ...(policy ? { policy } : {}), ...('retrain' in message ? { triggers: [message.retrain] } : { newData: [message.newData] }) }],
    });
    return true;
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
    return false;
  }
}

/**
 * Signal-with-start from inside a workflow (schedules, the data watcher, monitoring): signal
 * the model's lifecycle workflow, or, given a policy, start it with the message as its first
 * input. With a policy, starting comes first, so the first trigger is never decided under
 * another policy before the given one arrives; a running lifecycle keeps its own policy.
 * Without one, a trigger only reaches a running lifecycle: it never creates a model (a typo in
 * a model name would otherwise train one on the default template), and fails with `NoLifecycle`.
 */
export async function signalOrStartLifecycle(model: string, message: LifecycleMessage, policy?: LifecyclePolicyInput): Promise<'signalled' | 'started'> {
  const workflowId = lifecycleWorkflowId(model);
  const send = () =>
    'retrain' in message ? getExternalWorkflowHandle(workflowId).signal(retrainSignal, message.retrain) : getExternalWorkflowHandle(workflowId).signal(newDataSignal, message.newData);
  if (policy === undefined) {
    try {
      await send();
      return 'signalled';
    } catch (err) {
      if (patched('triggers-need-policy')) {
        throw ApplicationFailure.nonRetryable(
          `no lifecycle for model ${model}: a trigger without a policy does not create one (${err instanceof Error ? err.message : String(err)}); start it with a policy (mlops policy --model ${model} …, or give this trigger a policy)`,
          'NoLifecycle',
        );
      }
      // Before the patch: not running (or not yet), so start it below with the default policy.
    }
  }
  if (await startLifecycle(model, message, policy)) return 'started';
  // Someone started it in between, or it already ran: signal after all.
  await send();
  return 'signalled';
}
