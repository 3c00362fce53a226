import { ParentClosePolicy, getExternalWorkflowHandle, startChild, WorkflowIdReusePolicy } from '@temporalio/workflow';
import { MODEL_LIFECYCLE, TASK_QUEUES, lifecycleWorkflowId } from './definitions';
import { newDataSignal, retrainSignal, type NewDataRequest, type RetrainRequest } from './lifecycle-api';

export type LifecycleMessage = { retrain: RetrainRequest } | { newData: NewDataRequest };

/**
 * Signal-with-start from inside a workflow (schedules, the data watcher, monitoring): signal
 * the model's lifecycle workflow; if none runs, start it — abandoned, so it outlives the caller —
 * with the message as its first input. A lifecycle started by someone else in between is
 * signalled after all. Returns what happened.
 */
export async function signalOrStartLifecycle(model: string, message: LifecycleMessage): Promise<'signalled' | 'started'> {
  const workflowId = lifecycleWorkflowId(model);
  const send = () =>
    'retrain' in message ? getExternalWorkflowHandle(workflowId).signal(retrainSignal, message.retrain) : getExternalWorkflowHandle(workflowId).signal(newDataSignal, message.newData);
  try {
    await send();
    return 'signalled';
  } catch {
    // Not running (or not yet): start it below.
  }
  try {
    await startChild(MODEL_LIFECYCLE, {
      workflowId,
      taskQueue: TASK_QUEUES.control,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      args: [{ model, ...('retrain' in message ? { triggers: [message.retrain] } : { newData: [message.newData] }) }],
    });
    return 'started';
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
    await send();
    return 'signalled';
  }
}
