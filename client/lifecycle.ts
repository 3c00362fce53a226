import type { Client, WorkflowHandle } from '@temporalio/client';
import { MODEL_LIFECYCLE, NEW_DATA_SIGNAL, RETRAIN_SIGNAL, SET_POLICY_SIGNAL, TASK_QUEUES, lifecycleWorkflowId } from '../workflows/definitions';
import type { LifecyclePolicyInput, NewDataRequest, RetrainRequest } from '../workflows/lifecycle-api';

/**
 * Every trigger reaches a model through signal-with-start of its lifecycle workflow
 * (`model/<name>`): the first trigger starts it, later ones only signal. `policy` is used only
 * when this call starts the workflow; a running one keeps its own (use `setPolicy`).
 */
export async function signalLifecycle(
  client: Client,
  model: string,
  signal: 'retrain' | 'newData' | 'setPolicy',
  payload: RetrainRequest | NewDataRequest | LifecyclePolicyInput,
  policy?: LifecyclePolicyInput,
): Promise<WorkflowHandle> {
  const name = signal === 'retrain' ? RETRAIN_SIGNAL : signal === 'newData' ? NEW_DATA_SIGNAL : SET_POLICY_SIGNAL;
  return client.workflow.signalWithStart(MODEL_LIFECYCLE, {
    workflowId: lifecycleWorkflowId(model),
    taskQueue: TASK_QUEUES.control,
    args: [{ model, ...(policy ? { policy } : {}) }],
    signal: name,
    signalArgs: [payload],
  });
}
