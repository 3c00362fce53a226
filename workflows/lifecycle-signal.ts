import { ParentClosePolicy, getExternalWorkflowHandle, startChild, WorkflowIdReusePolicy } from '@temporalio/workflow';
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
 * the model's lifecycle workflow, or start it with the message as its first input. Without a
 * policy, signalling comes first (the common case: it runs). With one, starting comes first, so
 * the first trigger is never decided under the default policy before the given one arrives; a
 * running lifecycle keeps its own policy.
 */
export async function signalOrStartLifecycle(model: string, message: LifecycleMessage, policy?: LifecyclePolicyInput): Promise<'signalled' | 'started'> {
  const workflowId = lifecycleWorkflowId(model);
  const send = () =>
    'retrain' in message ? getExternalWorkflowHandle(workflowId).signal(retrainSignal, message.retrain) : getExternalWorkflowHandle(workflowId).signal(newDataSignal, message.newData);
  if (policy === undefined) {
    try {
      await send();
      return 'signalled';
    } catch {
      // Not running (or not yet): start it below.
    }
  }
  if (await startLifecycle(model, message, policy)) return 'started';
  // Someone started it in between, or it already ran: signal after all.
  await send();
  return 'signalled';
}
