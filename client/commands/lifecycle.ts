import { UserFacingError, describeError } from '../../infra/errors';
import { lifecycleWorkflowId } from '../../workflows/contracts/names';
import { STAND_IN_DATA, lifecyclePolicy, retrainRequest, trainingSpecInput, type LifecyclePolicyInput, type RetrainOutcome, type RetrainRequest } from '../../workflows/contracts/lifecycle';
import { formatZodIssues, parseCommand, parseDuration, readJson, requireModel, requireString, validate } from '../args';
import { trainingSpec } from '../../workflows/contracts/training-spec';
import { connectClient } from '../connection';
import { isoSeconds, print, printJson } from '../output';
import { createProgress } from '../progress';
import { NoLifecycleError, requestRetrain, signalLifecycle } from '../lifecycle';
import { EXIT_NOT_FINISHED } from './train';

/**
 * Reads and checks a policy file as the lifecycle workflow will: the policy schema, then its
 * training template as a continuousTraining spec for this model (a template without a dataset
 * is fine: data may come by `newData`).
 */
export function readPolicy(flag: string, value: string, model: string): LifecyclePolicyInput {
  const raw = readJson(flag, value);
  const policy = validate(lifecyclePolicy, raw, `policy (${flag})`);
  const parsed = trainingSpec.safeParse(trainingSpecInput(model, policy, policy.training.dataset ? [] : STAND_IN_DATA));
  if (!parsed.success) throw new UserFacingError(`invalid policy (${flag}): ${formatZodIssues(parsed.error).replace(/(^|; )/g, '$1training.')}`);
  return raw as LifecyclePolicyInput;
}

export async function retrain(argv: string[]): Promise<void> {
  const { values } = parseCommand('retrain', argv, {
    model: { type: 'string' },
    reason: { type: 'string' },
    'dedupe-key': { type: 'string' },
    policy: { type: 'string' },
    wait: { type: 'boolean', default: false },
    timeout: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const model = requireModel('retrain', values.model);
  const request: RetrainRequest = { reason: values.reason ?? 'requested from the mlops cli', source: 'cli', ...(values['dedupe-key'] ? { dedupeKey: values['dedupe-key'] } : {}) };
  validate(retrainRequest, request, 'retrain request');
  const policy = values.policy ? readPolicy('--policy', values.policy, model) : undefined;
  const timeoutMs = (values.timeout ? parseDuration('timeout', values.timeout) : 600) * 1000;
  const { client, connection, taskQueues } = await connectClient();
  try {
    const workflowId = lifecycleWorkflowId(model);
    if (!values.wait) {
      try {
        await signalLifecycle(client, model, 'retrain', request, policy, taskQueues.control);
      } catch (err) {
        if (err instanceof NoLifecycleError) throw new UserFacingError(err.message);
        throw err;
      }
      if (values.json) printJson({ workflowId, model, request });
      else print(`retrain signalled to ${workflowId}${policy ? ' (policy used if this started it)' : ''}; follow it: mlops status --model ${model}`);
      return;
    }
    const progress = createProgress({ quiet: values.json });
    progress.update(`${workflowId}: asking for a retrain (Update-with-start)`);
    let answered;
    try {
      answered = await requestRetrain(client, model, request, { policy, timeoutMs, taskQueue: taskQueues.control });
    } catch (err) {
      throw new UserFacingError(describeError(err));
    } finally {
      progress.stop();
    }
    const answer = answered.answer;
    if (!answer) throw new UserFacingError(`${workflowId} accepted the retrain but did not answer within ${Math.round(timeoutMs / 1000)}s; see mlops status --model ${model}`);
    // The lifecycle's id is `workflowId`; a started training's is `trainingWorkflowId`.
    if (values.json) printJson({ ...answer, workflowId, model, request, ...(answer.outcome === 'started' ? { trainingWorkflowId: answer.workflowId } : {}) });
    else print(describeRetrainOutcome(model, workflowId, answer));
    // Only a started or a coalesced request will be trained on.
    if (answer.outcome !== 'started' && answer.outcome !== 'coalesced') process.exitCode = EXIT_NOT_FINISHED;
  } finally {
    await connection.close();
  }
}

/** One line for each answer of the lifecycle's retrain Update. */
export function describeRetrainOutcome(model: string, lifecycleId: string, o: RetrainOutcome): string {
  switch (o.outcome) {
    case 'started':
      return `${model}: training ${o.workflowId} started by ${lifecycleId}\nfollow it: mlops status --workflow-id ${o.workflowId}`;
    case 'coalesced':
      return `${model}: coalesced: a training runs (${o.runningWorkflowId}); this request joins the one follow-up after it`;
    case 'duplicate':
      return `${model}: no training started: duplicate-dropped — dedupe key ${o.dedupeKey} was seen within the policy's window`;
    case 'deferred':
      return `${model}: no training started: deferred (${o.reason === 'budget' ? 'daily budget used' : 'cooldown'}) until ${o.until ? isoSeconds(o.until) : 'the budget is raised'}`;
    case 'rejected':
      return `${model}: no training started: rejected — ${o.reason}`;
  }
}

export async function policy(argv: string[]): Promise<void> {
  const { values } = parseCommand('policy', argv, { model: { type: 'string' }, file: { type: 'string' }, json: { type: 'boolean', default: false } });
  const model = requireModel('policy', values.model);
  const file = requireString('policy', 'file', values.file);
  const input = readPolicy('--file', file, model);
  const { client, connection, taskQueues } = await connectClient();
  try {
    await signalLifecycle(client, model, 'setPolicy', input, input, taskQueues.control);
    if (values.json) printJson({ workflowId: lifecycleWorkflowId(model), model, policy: lifecyclePolicy.parse(input) });
    else print(`policy sent to ${lifecycleWorkflowId(model)}: ${Object.keys(input).join(', ') || '(defaults)'}`);
  } finally {
    await connection.close();
  }
}
