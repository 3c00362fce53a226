import { setTimeout as sleep } from 'node:timers/promises';
import { defaultPayloadConverter, WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { UserFacingError } from '../../infra/errors';
import { continuousTraining } from '../../workflows/continuous-training';
import type { TrainingResult } from '../../workflows/continuous-training';
import type { PipelineState, PipelineStatus } from '../../workflows/pipeline';
import { parseCommand, parseIntFlag } from '../args';
import { connectClient } from '../connection';
import { print, printJson } from '../output';
import { createProgress, type Progress } from '../progress';
import { buildTrainingSpec, defaultTrainingWorkflowId } from '../training-spec-args';
import { pipelineView, stepDoneLine, trainingProgressLine, trainingResultView } from '../views';
import { resultOf } from '../workflows';

/** Exit code when the run stopped without a result a script can use (paused, aborted). */
export const EXIT_NOT_FINISHED = 3;

export async function train(argv: string[]): Promise<void> {
  const { values } = parseCommand('train', argv, {
    model: { type: 'string' },
    spec: { type: 'string' },
    'spec-json': { type: 'string' },
    months: { type: 'string' },
    'sample-rows': { type: 'string' },
    'workflow-id': { type: 'string' },
    'no-wait': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  const spec = buildTrainingSpec({ model: values.model, spec: values.spec, specJson: values['spec-json'], months: values.months, sampleRows: parseIntFlag('sample-rows', values['sample-rows'], 1) });
  const model = spec.model;
  const workflowId = values['workflow-id'] ?? defaultTrainingWorkflowId(model);
  const { client, connection, address, taskQueues } = await connectClient();
  try {
    let handle: WorkflowHandleWithFirstExecutionRunId;
    try {
      handle = await client.workflow.start(continuousTraining, { taskQueue: taskQueues.control, workflowId, args: [spec] });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new UserFacingError(`--workflow-id ${workflowId}: a workflow with this id is already running (mlops status --workflow-id ${workflowId})`);
      throw err;
    }
    const runId = handle.firstExecutionRunId;
    if (values['no-wait']) {
      if (values.json) printJson({ workflowId, runId, model });
      else print(`started ${workflowId} (${model}) on ${address}\nfollow it: mlops status --workflow-id ${workflowId}`);
      return;
    }
    const progress = createProgress();
    progress.note(`started ${workflowId} (${model}) on ${address}; Ctrl-C stops waiting, not the run`);
    const outcome = await waitForTraining(client, handle, progress);
    progress.stop();
    if (outcome.kind === 'result') {
      if (values.json) printJson({ workflowId, runId, state: outcome.result.status === 'registered' ? 'succeeded' : 'rejected', result: outcome.result });
      else print(trainingResultView(outcome.result) + `\n  workflow ${workflowId}`);
      return;
    }
    // Paused: the run waits for a human; tell the script, and the human what to type.
    if (values.json) printJson({ workflowId, runId, state: outcome.status.state, failure: outcome.status.failure, status: outcome.status });
    else print(pipelineView(outcome.status));
    process.exitCode = EXIT_NOT_FINISHED;
  } finally {
    await connection.close();
  }
}

type Outcome = { kind: 'result'; result: TrainingResult } | { kind: 'paused'; status: PipelineStatus };

/**
 * Polls the `status` query about once a second while the result is awaited; a step that ends
 * prints a line of its own. A run that pauses in `awaiting-resume` ends the wait: it may stay
 * paused for days.
 */
export async function waitForTraining(client: Client, handle: WorkflowHandle, progress: Progress, pollMs = 1000): Promise<Outcome> {
  let settled: { ok: true; value: TrainingResult } | { ok: false; error: unknown } | undefined;
  const result = resultOf<TrainingResult>(handle).then(
    (value) => (settled = { ok: true, value }),
    (error: unknown) => (settled = { ok: false, error }),
  );
  const reported = new Map<string, string>();
  let lastState: PipelineState | undefined;
  for (;;) {
    // One more query once the result is in, so the steps that ended since the last poll are listed too.
    const done = settled !== undefined;
    const st = await handle.query<PipelineStatus>('status').catch(() => undefined);
    if (st) {
      for (const s of st.steps) {
        const ended = s.state === 'succeeded' || s.state === 'cached' || s.state === 'failed' || s.state === 'skipped';
        const key = `${s.state}:${s.runs}`;
        if (ended && reported.get(s.name) !== key) {
          reported.set(s.name, key);
          progress.note(stepDoneLine(s));
        }
      }
      if (st.state === 'awaiting-resume') return { kind: 'paused', status: st };
      if (st.state !== lastState && lastState !== undefined && st.state !== 'running') progress.note(`run ${st.state}`);
      lastState = st.state;
      if (!done) progress.update(trainingProgressLine(st, await runningActivity(handle)));
    }
    if (done) break;
    await Promise.race([sleep(pollMs), result]);
  }
  const final = await result;
  if (!final.ok) throw final.error;
  return { kind: 'result', result: final.value };
}

/** Attempt and last heartbeat (training round) of the activity the run is waiting on. */
async function runningActivity(handle: WorkflowHandle): Promise<{ attempt: number; details?: unknown } | undefined> {
  try {
    const d = await handle.describe();
    const a = d.raw.pendingActivities?.[0];
    if (!a) return undefined;
    const payload = a.heartbeatDetails?.payloads?.[0];
    let details: unknown;
    try {
      details = payload ? defaultPayloadConverter.fromPayload(payload) : undefined;
    } catch {
      details = undefined;
    }
    return { attempt: a.attempt ?? 1, details };
  } catch {
    return undefined;
  }
}
