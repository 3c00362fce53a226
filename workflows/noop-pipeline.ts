import { setHandler, setWorkflowOptions } from '@temporalio/workflow';
import type { createStepActivities } from '../activities/steps';
import { lazyActivities, taskQueues } from './contracts/task-queues';
import { abortSignal, resumeSignal, trainingStatusQuery } from './continuous-training';
import { Pipeline, decisionWaiter } from './pipeline';
import { versioning } from './contracts/versioning';

/**
 * A pipeline of no-op steps on the same engine as continuousTraining, with the same status
 * query and resume/abort signals: what `npm run bench -- ct` measures the engine with (against
 * the same number of raw activity calls).
 */

const acts = lazyActivities<ReturnType<typeof createStepActivities>>(() => ({ taskQueue: taskQueues().control, startToCloseTimeout: '1 minute', retry: { maximumAttempts: 2 } }));

// Worker Versioning: short-lived: it finishes on the build it started on.
setWorkflowOptions(versioning('PINNED'), noopPipeline);

export async function noopPipeline(input: { steps: number; raw?: boolean }): Promise<{ steps: number; resumes: number }> {
  const names = Array.from({ length: input.steps }, (_, i) => `noop-${i}`);
  const p = new Pipeline('noopPipeline', names, {});
  const pending: { decision?: 'resume' | 'abort' } = {};
  setHandler(trainingStatusQuery, () => p.status);
  setHandler(resumeSignal, () => {
    if (p.status.state === 'awaiting-resume') pending.decision = 'resume';
  });
  setHandler(abortSignal, () => {
    pending.decision = 'abort';
  });
  if (input.raw) {
    for (let i = 0; i < input.steps; i++) await acts.noop();
    return { steps: input.steps, resumes: 0 };
  }
  await p.runResumable(
    async () => {
      for (let i = 0; i < input.steps; i++) await p.run(names[i]!, { i }, (c) => acts.noopStep(c));
    },
    { pause: true, timeoutMs: 3_600_000, nextDecision: decisionWaiter(pending) },
  );
  p.status.state = 'succeeded';
  return { steps: input.steps, resumes: p.status.resumes };
}
