import { temporal } from '@temporalio/proto';
import { UserFacingError } from '../../infra/errors';
import { parseCommand, requireString } from '../args';
import { connectClient } from '../connection';
import { print, printJson } from '../output';
import { describeWorkflow } from '../workflows';

const { PendingActivityState, TaskQueueType } = temporal.api.enums.v1;

/** A step's activity type: its name in camelCase (`validate-data` → `validateData`). */
const activityTypeOf = (step: string) => step.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * `move-step --workflow-id <id> --step train --task-queue <queue>`: UpdateActivityOptions with
 * the task queue, for a step waiting on a pool with no free worker. The Temporal CLI 1.5.1's
 * `activity update-options --task-queue` sends a field mask the server does not apply.
 */
export async function moveStep(argv: string[]): Promise<void> {
  const { values } = parseCommand('move-step', argv, { 'workflow-id': { type: 'string' }, step: { type: 'string' }, 'task-queue': { type: 'string' }, json: { type: 'boolean', default: false } });
  const workflowId = requireString('move-step', 'workflow-id', values['workflow-id']);
  const step = requireString('move-step', 'step', values.step);
  const queue = requireString('move-step', 'task-queue', values['task-queue']);
  const { client, connection } = await connectClient();
  try {
    const d = await describeWorkflow(client, workflowId);
    const pending = d.raw.pendingActivities ?? [];
    // Runs started before steps were named by their activity id are found by activity type.
    const activity = pending.find((a) => a.activityId === step) ?? pending.find((a) => a.activityType?.name === activityTypeOf(step));
    if (!activity?.activityId) {
      throw new UserFacingError(`move-step: ${workflowId} has no pending step ${step} (pending: ${pending.map((a) => a.activityId).join(', ') || 'none'})`);
    }
    const from = activity.activityOptions?.taskQueue?.name ?? '?';
    const res = await client.workflowService.updateActivityOptions({
      namespace: client.options.namespace,
      execution: { workflowId, runId: d.runId },
      id: activity.activityId,
      activityOptions: { taskQueue: { name: queue } },
      updateMask: { paths: ['task_queue.name'] },
      identity: client.options.identity,
    });
    const to = res.activityOptions?.taskQueue?.name;
    if (to !== queue) throw new Error(`move-step: the server kept ${step} on ${to ?? '?'}`);
    const q = await client.workflowService.describeTaskQueue({ namespace: client.options.namespace, taskQueue: { name: queue }, taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY });
    const pollers = q.pollers?.length ?? 0;
    const running = activity.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
    if (values.json) {
      printJson({ workflowId, step, activityId: activity.activityId, from, to, running, pollers });
      return;
    }
    print(
      `${step} of ${workflowId}: ${from} → ${to}` +
        (running ? '; the attempt running now finishes where it is, the next one goes there' : '; it waits there for a worker') +
        (pollers ? ` (${pollers} worker${pollers === 1 ? '' : 's'} polling)` : ` (no worker polls ${queue} yet)`),
    );
  } finally {
    await connection.close();
  }
}
