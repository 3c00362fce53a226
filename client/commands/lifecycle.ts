import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { UserFacingError } from '../../infra/errors';
import { lifecycleWorkflowId } from '../../workflows/definitions';
import { STAND_IN_DATA, lifecyclePolicy, retrainRequest, trainingSpecInput, type LifecycleDecision, type LifecyclePolicyInput, type LifecycleStatus, type RetrainRequest } from '../../workflows/lifecycle-api';
import { formatZodIssues, parseCommand, parseDuration, readJson, requireModel, requireString, validate } from '../args';
import { trainingSpec } from '../../workflows/training-spec';
import { connectClient } from '../connection';
import { isoSeconds, print, printJson } from '../output';
import { createProgress } from '../progress';
import { signalLifecycle } from '../lifecycle';
import { tryQuery } from '../workflows';
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
  const { client, connection } = await connectClient();
  try {
    const workflowId = lifecycleWorkflowId(model);
    const baseline = values.wait ? await baselineOf(client, workflowId) : { triggers: 0, duplicates: 0 };
    // Workflow time is the server's clock; allow for a little skew against ours.
    const since = Date.now() - 2000;
    await signalLifecycle(client, model, 'retrain', request, policy);
    if (!values.wait) {
      if (values.json) printJson({ workflowId, model, request });
      else print(`retrain signalled to ${workflowId}${policy ? ' (policy used if this started it)' : ''}; follow it: mlops status --model ${model}`);
      return;
    }
    const outcome = await waitForTrainingStart(client, workflowId, since, baseline, { reason: request.reason!, dedupeKey: request.dedupeKey }, timeoutMs, values.json);
    if (values.json) printJson({ workflowId, model, request, ...outcome });
    else if (outcome.trainingWorkflowId) print(`${model}: training ${outcome.trainingWorkflowId} started by ${workflowId}\nfollow it: mlops status --workflow-id ${outcome.trainingWorkflowId}`);
    else print(`${model}: no training started: ${outcome.decision?.kind ?? 'timeout'}${outcome.decision ? ` — ${outcome.decision.detail}` : ''}${outcome.nextEligibleAt ? ` (next eligible ${isoSeconds(outcome.nextEligibleAt)})` : ''}`);
    if (!outcome.trainingWorkflowId) process.exitCode = EXIT_NOT_FINISHED;
  } finally {
    await connection.close();
  }
}

export interface StartOutcome {
  trainingWorkflowId?: string;
  /** Why no training started (dropped as a duplicate, deferred by cooldown or budget). */
  decision?: LifecycleDecision;
  nextEligibleAt?: string;
}

export type TriggerBaseline = Pick<LifecycleStatus['counters'], 'triggers' | 'duplicates'>;

/**
 * What the lifecycle did with our trigger, sent at `since` when its counters stood at
 * `baseline`; `undefined` while it has not decided yet. A trigger that arrives during a training
 * joins the follow-up training, so "a training is running" alone does not answer it.
 */
export function triggerOutcome(st: LifecycleStatus, since: number, baseline: TriggerBaseline, mine: { reason: string; dedupeKey?: string }): StartOutcome | undefined {
  if (st.counters.triggers <= baseline.triggers) return undefined;
  const ours = (t: { source: string; reason: string; dedupeKey?: string }) => t.source === 'cli' && t.reason === mine.reason && t.dedupeKey === mine.dedupeKey;
  if (st.running?.kind === 'training' && st.running.triggers.some(ours)) return { trainingWorkflowId: st.running.workflowId };
  // Before "a training started lately": a duplicate sent right after the original would
  // otherwise be taken for the original's training.
  if (st.counters.duplicates > baseline.duplicates) return { decision: [...st.decisions].reverse().find((d) => d.kind === 'duplicate-dropped') };
  const recent = st.decisions.filter((d) => Date.parse(d.at) >= since);
  // Every pending trigger goes into the next training, so one started after ours was accepted serves it.
  const started = recent.find((d) => d.kind === 'training-started' && d.workflowId);
  if (started && !st.pending.some(ours)) return { trainingWorkflowId: started.workflowId };
  const deferred = recent.find((d) => d.kind === 'deferred');
  if (deferred) return { decision: deferred, nextEligibleAt: st.nextEligibleAt };
  return undefined;
}

/** The lifecycle's counters before our signal (zero when none runs: signal-with-start makes a fresh one). */
async function baselineOf(client: Client, workflowId: string): Promise<TriggerBaseline> {
  const running = await client.workflow
    .getHandle(workflowId)
    .describe()
    .then((d) => d.status.name === 'RUNNING')
    .catch(() => false);
  const st = running ? await tryQuery<LifecycleStatus>(client, workflowId, 'status') : undefined;
  return { triggers: st?.counters.triggers ?? 0, duplicates: st?.counters.duplicates ?? 0 };
}

async function waitForTrainingStart(client: Client, workflowId: string, since: number, baseline: TriggerBaseline, mine: { reason: string; dedupeKey?: string }, timeoutMs: number, quiet: boolean): Promise<StartOutcome> {
  const progress = createProgress({ quiet });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const st = await tryQuery<LifecycleStatus>(client, workflowId, 'status');
      if (st) {
        const outcome = triggerOutcome(st, since, baseline, mine);
        if (outcome) return outcome;
        const last = st.decisions.at(-1);
        progress.update(`${workflowId}: ${st.phase}${st.running ? ` (${st.running.kind} ${st.running.workflowId})` : ''}${last ? `; last decision ${last.kind}` : ''}; waiting for the training`);
      } else {
        progress.update(`${workflowId}: waiting for the lifecycle workflow to answer`);
      }
      if (Date.now() > deadline) throw new UserFacingError(`${workflowId} started no training for this trigger within ${Math.round(timeoutMs / 1000)}s; see mlops status --model ${workflowId.slice('model/'.length)}`);
      await sleep(1000);
    }
  } finally {
    progress.stop();
  }
}

export async function policy(argv: string[]): Promise<void> {
  const { values } = parseCommand('policy', argv, { model: { type: 'string' }, file: { type: 'string' }, json: { type: 'boolean', default: false } });
  const model = requireModel('policy', values.model);
  const file = requireString('policy', 'file', values.file);
  const input = readPolicy('--file', file, model);
  const { client, connection } = await connectClient();
  try {
    await signalLifecycle(client, model, 'setPolicy', input, input);
    if (values.json) printJson({ workflowId: lifecycleWorkflowId(model), model, policy: lifecyclePolicy.parse(input) });
    else print(`policy sent to ${lifecycleWorkflowId(model)}: ${Object.keys(input).join(', ') || '(defaults)'}`);
  } finally {
    await connection.close();
  }
}
