import { QueryNotRegisteredError, WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { UserFacingError, describeError } from '../infra/errors';
import { STATUS_QUERY } from '../workflows/contracts/names';

/**
 * Handles on our workflows with the failures a user can act on turned into one-line errors:
 * an id that does not exist, a run that already ended, a workflow that failed.
 */

function isNotFound(err: unknown): boolean {
  return err instanceof WorkflowNotFoundError || (err as { code?: number }).code === 5 /* gRPC NOT_FOUND */;
}

export async function describeWorkflow(client: Client, workflowId: string, what = 'workflow'): Promise<WorkflowExecutionDescription> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (isNotFound(err)) throw new UserFacingError(`no ${what} with id ${JSON.stringify(workflowId)} in namespace ${client.options.namespace}`);
    throw err;
  }
}

/** Signals a running workflow; a missing or closed one is a user error, not a stack trace. */
export async function signalRunning(client: Client, workflowId: string, signal: string, arg: unknown, what = 'workflow'): Promise<WorkflowExecutionDescription> {
  const d = await describeWorkflow(client, workflowId, what);
  if (d.status.name !== 'RUNNING') throw new UserFacingError(`${what} ${workflowId} is ${d.status.name.toLowerCase()}, not running: nothing to ${signal}`);
  try {
    await client.workflow.getHandle(workflowId).signal(signal, arg);
  } catch (err) {
    if (isNotFound(err)) throw new UserFacingError(`${what} ${workflowId} ended before the ${signal} signal reached it`);
    throw err;
  }
  return d;
}

/** The `status` query every workflow of ours answers. */
export async function queryStatus<T>(client: Client, workflowId: string, what = 'workflow'): Promise<T> {
  try {
    return await client.workflow.getHandle(workflowId).query<T>(STATUS_QUERY);
  } catch (err) {
    if (isNotFound(err)) throw new UserFacingError(`no ${what} with id ${JSON.stringify(workflowId)} in namespace ${client.options.namespace}`);
    if (err instanceof QueryNotRegisteredError) throw new UserFacingError(`${workflowId} does not answer a status query (not one of the mlops workflows?)`);
    throw err;
  }
}

/** Like queryStatus, but `undefined` when the workflow does not exist or cannot answer now. */
export async function tryQuery<T>(client: Client, workflowId: string, query: string): Promise<T | undefined> {
  try {
    return await client.workflow.getHandle(workflowId).query<T>(query);
  } catch {
    return undefined;
  }
}

/** A workflow's result; its failure becomes the failure's own message (the root cause a user can fix). */
export async function resultOf<T>(handle: WorkflowHandle): Promise<T> {
  try {
    return (await handle.result()) as T;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      let cause: Error | undefined = err.cause;
      while (cause && (cause as { cause?: Error }).cause) cause = (cause as { cause?: Error }).cause;
      throw new UserFacingError(`${handle.workflowId} failed: ${cause?.message ?? err.message}`);
    }
    throw new UserFacingError(`${handle.workflowId}: ${describeError(err)}`);
  }
}
