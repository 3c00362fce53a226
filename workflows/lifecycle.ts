import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  patched,
  proxySinks,
  setHandler,
  setWorkflowOptions,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { DeploymentActivities } from '../activities/deployment';
import { continuousTraining } from './continuous-training';
import { headlineMetric } from './contracts/headline-metric';
import type { MlopsMetricSinks } from './contracts/metric-sinks';
import { lifecycleWorkflowId, monitoringWorkflowId, promotionWorkflowId } from './contracts/names';
import { priorityForSources } from './contracts/priority';
import { lazyActivities, taskQueues } from './contracts/task-queues';
import { issueLines, parseInput } from './input';
import {
  lifecyclePolicy,
  lifecycleStatusQuery,
  modelName,
  newDataRequest,
  newDataSignal,
  retrainRequest,
  retrainSignal,
  retrainUpdate,
  setPolicySignal,
  setThresholdsSignal,
  STAND_IN_DATA,
  trainingSpecInput,
  type LifecycleDecision,
  type LifecycleDecisionKind,
  type LifecyclePolicy,
  type MonitoringInput,
  type RetrainOutcome,
} from './contracts/lifecycle';
import { carriedState, LifecycleRules, type CarriedState } from './lifecycle-rules';
import { monitoring } from './monitoring';
import { promotion, type PromotionInput } from './promotion';
import { trainingSpec, type TrainingSpec } from './contracts/training-spec';
import { versioning } from './contracts/versioning';

/**
 * modelLifecycle: the one stable address of a model (`model/<name>`). Every trigger — CLI,
 * schedule, monitoring, webhook, new data — signals it (signal-with-start). It never runs two
 * trainings of one model at once: triggers that arrive during a training coalesce into one
 * follow-up, duplicates (same dedupe key) are dropped, and a cooldown and a daily budget from
 * its policy pace the rest. It runs continuousTraining and, for an accepted candidate,
 * promotion as children, keeps monitoring running for the production version, and continues
 * as new with its state when the history grows.
 */

export const lifecycleInput = z
  .object({
    model: modelName,
    policy: z.unknown().optional(),
    /** First triggers, for a lifecycle started by a workflow (schedule, watcher) rather than signal-with-start. */
    triggers: z.array(z.unknown()).max(100).optional(),
    newData: z.array(z.unknown()).max(100).optional(),
    /** Continue-as-new once the history has this many events (and nothing runs). */
    maxHistoryEvents: z.number().int().min(20).max(50_000).default(10_000),
    /** Carried across continue-as-new; not for users. */
    state: carriedState.optional(),
    /** The previous run closed with thresholds sent to monitoring and not yet delivered. */
    redeliverThresholds: z.literal(true).optional(),
  })
  .strict();
export type LifecycleInput = z.input<typeof lifecycleInput>;

const registry = lazyActivities<Pick<DeploymentActivities, 'currentProduction'>>(() => ({
  taskQueue: taskQueues().control,
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['NotFound'] },
}));

const productionLookup = lazyActivities<Pick<DeploymentActivities, 'currentProduction' | 'productionTemplate'>>(() => ({
  taskQueue: taskQueues().control,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '250ms', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: ['NotFound'] },
}));

const isNotFound = (err: unknown) => err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'NotFound';

/** The source a request that failed to parse says it came from, for the rejected-request count. */
const givenSource = (raw: unknown): string => {
  const source = (raw as { source?: unknown } | null | undefined)?.source;
  return typeof source === 'string' && /^[a-z0-9_.-]{1,40}$/i.test(source) ? source : 'unknown';
};

const describe = (err: unknown) => (err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err));

/** The training spec a retrain runs: the policy's template, the model, and the newest data window. */
export function buildTrainingSpec(model: string, policy: LifecyclePolicy, dataUris: string[]): TrainingSpec {
  return parseInput(trainingSpec, trainingSpecInput(model, policy, dataUris), 'lifecycle training template (policy.training)');
}

function checkPolicy(model: string, raw: unknown): LifecyclePolicy {
  const policy = parseInput(lifecyclePolicy, raw ?? {}, 'lifecycle policy');
  // A template without a dataset is fine when data arrives by `newData`; check the rest with a stand-in URI.
  buildTrainingSpec(model, policy, policy.training.dataset ? [] : STAND_IN_DATA);
  return policy;
}

// Worker Versioning: runs for months: it moves to the current build at its next task, so its changes are guarded with patched().
setWorkflowOptions(versioning('AUTO_UPGRADE'), modelLifecycle);

export async function modelLifecycle(raw: LifecycleInput): Promise<never> {
  const input = parseInput(lifecycleInput, raw, 'modelLifecycle');
  const model = input.model;
  if (workflowInfo().workflowId !== lifecycleWorkflowId(model)) {
    throw ApplicationFailure.nonRetryable(
      `the lifecycle of ${model} must run with workflow id ${lifecycleWorkflowId(model)} (one per model); got ${workflowInfo().workflowId}`,
      'InvalidInput',
    );
  }
  const { mlopsMetrics } = proxySinks<MlopsMetricSinks>();
  const observe = (decision: Parameters<typeof mlopsMetrics.retrainDecision>[0]['decision'], source: string) => mlopsMetrics.retrainDecision({ model, decision, source });
  const rules = input.state
    ? new LifecycleRules(model, input.state, (line) => log.info(line), observe)
    : LifecycleRules.initial(model, checkPolicy(model, input.policy), Date.now(), (line) => log.info(line), observe);
  const s = rules.state;
  /** A setThresholds signal to monitoring not yet delivered, and the newest thresholds waiting for it. */
  let thresholdsInFlight = false;
  let nextThresholds: LifecyclePolicy['monitoring']['thresholds'] | undefined;
  const decide = (kind: LifecycleDecisionKind, detail: string, extra?: Partial<LifecycleDecision>) => rules.decide(Date.now(), kind, detail, extra);

  const sendThresholds = (thresholds: LifecyclePolicy['monitoring']['thresholds']) => {
    // Two signals sent in one workflow task may arrive in either order (found under load: a
    // monitor kept the thresholds before the last), so one is in flight at a time and the
    // newest waits for it. Guarded: runs recorded before sent each at once.
    if (patched('thresholds-one-at-a-time')) {
      if (thresholdsInFlight) {
        nextThresholds = thresholds;
        return;
      }
      thresholdsInFlight = true;
    }
    // A failed delivery is shown, not dropped: monitoring keeps judging with its old thresholds.
    getExternalWorkflowHandle(monitoringWorkflowId(model))
      .signal(setThresholdsSignal, thresholds)
      .catch((err: unknown) => void decide('error', `setThresholds not delivered to ${monitoringWorkflowId(model)}: ${describe(err)}; it keeps its old thresholds`, { workflowId: monitoringWorkflowId(model) }))
      .finally(() => {
        thresholdsInFlight = false;
        const next = nextThresholds;
        nextThresholds = undefined;
        if (next) sendThresholds(next);
      });
  };

  const onNewData = (raw: unknown) => {
    const parsed = newDataRequest.safeParse(raw ?? {});
    if (!parsed.success) {
      decide('error', `newData ignored: ${issueLines(parsed.error).join('; ')}`);
      return;
    }
    const trigger = rules.newData(parsed.data, Date.now());
    if (trigger) rules.accept(trigger, Date.now());
  };

  setHandler(retrainSignal, (raw: unknown) => {
    const parsed = retrainRequest.safeParse(raw ?? {});
    if (!parsed.success) {
      decide('error', `retrain ignored: ${issueLines(parsed.error).join('; ')}`);
      rules.rejected(givenSource(raw));
      return;
    }
    rules.accept(parsed.data, Date.now());
  });
  // The same request as an Update: a bad one is rejected by the validator before it is
  // recorded; the answer says what happened to it.
  setHandler(
    retrainUpdate,
    async (raw): Promise<RetrainOutcome> => {
      const now = Date.now();
      const accepted = rules.accept(retrainRequest.parse(raw ?? {}), now);
      if (accepted.kind === 'duplicate') return { outcome: 'duplicate', dedupeKey: accepted.dedupeKey };
      if (accepted.kind === 'coalesced') return { outcome: 'coalesced', runningWorkflowId: accepted.into };
      const deferral = rules.deferral(now);
      if (deferral) return { outcome: 'deferred', until: Number.isFinite(deferral.until) ? new Date(deferral.until).toISOString() : null, reason: deferral.reason };
      await condition(() => rules.outcomeOf(accepted.ticket) !== undefined);
      const outcome = rules.outcomeOf(accepted.ticket)!;
      rules.forget(accepted.ticket);
      return outcome;
    },
    {
      validator: (raw) => {
        const parsed = retrainRequest.safeParse(raw ?? {});
        if (!parsed.success) {
          rules.rejected(givenSource(raw));
          throw new Error(`invalid retrain request: ${issueLines(parsed.error).join('; ')}`);
        }
      },
    },
  );
  setHandler(newDataSignal, onNewData);
  setHandler(setPolicySignal, (raw) => {
    try {
      const given = raw as { training?: unknown } | undefined;
      // A policy without a template keeps the current one (perhaps adopted from production).
      const next = given && typeof given === 'object' && given.training === undefined && patched('set-policy-keeps-template') ? checkPolicy(model, { ...given, training: s.policy.training }) : checkPolicy(model, raw);
      const thresholdsChanged = JSON.stringify(next.monitoring) !== JSON.stringify(s.policy.monitoring);
      s.policy = next;
      decide('policy', 'policy updated');
      // Monitoring runs only when enabled: with it off, there is no one to tell.
      if (thresholdsChanged && s.production !== null && (next.monitoring.enabled || !patched('thresholds-only-to-monitoring'))) {
        sendThresholds(next.monitoring.thresholds);
      }
      rules.wake++;
    } catch (err) {
      decide('error', `setPolicy ignored: ${describe(err)}`);
    }
  });
  setHandler(lifecycleStatusQuery, () => rules.status(Date.now()));

  const ensureMonitoring = async () => {
    if (s.production === null || !s.policy.monitoring.enabled) return;
    const m = s.policy.monitoring;
    // Only a policy that sets it changes the child's input: runs recorded before replay as they were.
    const args: MonitoringInput = { model, periodSeconds: m.periodSeconds, thresholds: m.thresholds, ...(m.checksPerRun === undefined ? {} : { checksPerRun: m.checksPerRun }) };
    try {
      await startChild(monitoring, {
        workflowId: monitoringWorkflowId(model),
        taskQueue: taskQueues().control,
        // Monitoring outlives this run (continue-as-new) and keeps its own history small.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [args],
      });
      decide('monitoring-started', `monitoring ${monitoringWorkflowId(model)} every ${s.policy.monitoring.periodSeconds}s`, { workflowId: monitoringWorkflowId(model) });
    } catch (err) {
      if (!(err instanceof Error) || err.name !== 'WorkflowExecutionAlreadyStartedError') decide('error', `monitoring not started: ${describe(err)}`);
    }
  };

  /** One training (and promotion) for every trigger pending now. */
  const cycle = async () => {
    const now = Date.now();
    const { triggers, tickets } = rules.startCycle();
    let spec: TrainingSpec;
    try {
      spec = buildTrainingSpec(model, s.policy, s.dataUris);
    } catch (err) {
      // Nothing ran, so nothing is counted against the budget; the triggers are answered with the error.
      decide('error', `no training for ${triggers.length} trigger(s): ${describe(err)}`);
      for (const t of triggers) rules.rejected(t.source);
      rules.settle(tickets, { outcome: 'rejected', reason: describe(err) });
      return;
    }
    // Guarded: lifecycles that started trainings without a priority replay with the spec they had.
    if (patched('training-priority')) {
      spec = { ...spec, priority: { key: priorityForSources(triggers.map((t) => t.source), s.policy.priorities), fairnessWeight: spec.priority?.fairnessWeight ?? 1 } };
    }
    rules.countTraining(now, triggers[0]?.source);
    const workflowId = `train-${model}-${s.counters.trainings}-${uuid4().slice(0, 8)}`;
    const sources = [...new Set(triggers.map((t) => t.source))].join(', ');
    rules.running = { kind: 'training', workflowId, startedAt: new Date(now).toISOString(), triggers };
    decide('training-started', `training ${workflowId} for ${triggers.length} trigger(s) (${sources}) on ${'uris' in spec.dataset ? `${spec.dataset.uris.length} data object(s)` : 'flights' in spec.dataset ? `flights ${spec.dataset.flights.from}..${spec.dataset.flights.to}` : `bundled ${spec.dataset.bundled}`}${spec.priority ? ` at priority ${spec.priority.key}` : ''}`, {
      workflowId,
      source: triggers[0]?.source,
      figures: triggers[0]?.figures,
    });
    rules.settle(tickets, { outcome: 'started', workflowId });
    try {
      const result = await executeChild(continuousTraining, {
        workflowId,
        taskQueue: taskQueues().control,
        args: [spec],
      });
      decide('training-finished', `${workflowId}: v${result.version} ${result.status} (${headlineMetric(result)})${result.reasons.length ? `: ${result.reasons.join('; ')}` : ''}`, {
        workflowId,
        version: result.version,
        figures:
          result.task === 'regression'
            ? { ...result.metrics, status: result.status }
            : result.task === 'multiclass'
              ? { macroF1: result.metrics.macroF1, logLoss: result.metrics.logLoss, accuracy: result.metrics.accuracy, status: result.status }
              : { auc: result.metrics.auc, logLoss: result.metrics.logLoss, status: result.status },
      });
      if (result.status === 'registered' && s.policy.promote) {
        const promotionId = promotionWorkflowId(model);
        rules.running = { kind: 'promotion', workflowId: promotionId, startedAt: new Date(Date.now()).toISOString(), triggers };
        decide('promotion-started', `promoting v${result.version}`, { workflowId: promotionId, version: result.version });
        const promotionArgs = { ...s.policy.promotion, model, version: result.version } as PromotionInput;
        const p = await executeChild(promotion, { workflowId: promotionId, taskQueue: taskQueues().control, args: [promotionArgs] });
        s.counters.promotions++;
        decide('promotion-finished', `v${result.version} ${p.outcome}${p.reason ? `: ${p.reason}` : ''}`, { workflowId: promotionId, version: result.version, figures: { outcome: p.outcome } });
        if (p.outcome === 'promoted') s.production = result.version;
      }
    } catch (err) {
      const running = rules.running;
      decide('error', `${running?.kind ?? 'cycle'} ${running?.workflowId ?? ''} failed: ${describe(err)}`, { workflowId: running?.workflowId });
    } finally {
      rules.running = undefined;
      s.lastTrainingEndedAt = Date.now();
    }
  };

  for (const t of input.triggers ?? []) {
    const parsed = retrainRequest.safeParse(t ?? {});
    if (parsed.success) rules.accept(parsed.data, Date.now());
    else {
      decide('error', `retrain ignored: ${issueLines(parsed.error).join('; ')}`);
      rules.rejected(givenSource(t));
    }
  }
  for (const d of input.newData ?? []) onNewData(d);

  if (!input.state) {
    if (patched('production-lookup-retries')) {
      // Only "not in the registry" means no production version; a database that is down is
      // retried until it answers (the pending activity shows the error), never read as "none".
      try {
        s.production = await productionLookup.currentProduction({ model });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        s.production = null;
      }
      // A model that already serves keeps its own data and features: without a template of its
      // own, the policy takes the one that trained the production version.
      const given = input.policy as { training?: unknown } | undefined;
      if (s.production !== null && given?.training === undefined && patched('adopt-production-template')) {
        const adopted = await productionLookup.productionTemplate({ model });
        if (adopted) {
          try {
            s.policy = checkPolicy(model, { ...(given ?? {}), training: adopted.template });
            decide('policy', `training template adopted from v${adopted.version} in production${adopted.workflowId ? ` (trained by ${adopted.workflowId})` : ''}`);
          } catch (err) {
            decide('error', `the training spec of v${adopted.version} is not a usable template: ${describe(err)}`);
          }
        }
      }
    } else {
      try {
        s.production = await registry.currentProduction({ model });
      } catch {
        s.production = null;
      }
    }
  }
  // Started by nothing but a message it refused (a bad signal-with-start or Update-with-start,
  // and no policy of its own): ending at once with the reason beats idling forever. By now the
  // messages that came with the start have been handled.
  if (!input.state && input.policy === undefined && !input.triggers?.length && !input.newData?.length && patched('end-on-bad-start')) {
    const errors = s.decisions.filter((d) => d.kind === 'error');
    if (errors.length && errors.length === s.decisions.length && !s.pending.length && !rules.running) {
      throw ApplicationFailure.nonRetryable(`the lifecycle of ${model} was started by a message it refused, so it ends: ${errors.map((e) => e.detail).join('; ')}`, 'InvalidInput');
    }
  }
  if (input.redeliverThresholds && s.production !== null && s.policy.monitoring.enabled) sendThresholds(s.policy.monitoring.thresholds);
  await ensureMonitoring();

  for (;;) {
    const seenWake = rules.wake;
    const now = Date.now();
    const eligibleAt = s.pending.length ? rules.nextEligibleAt(now) : undefined;
    if (s.pending.length && eligibleAt === undefined) {
      await cycle();
      await ensureMonitoring();
      continue;
    }
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength >= input.maxHistoryEvents) {
      // A retrain Update waits for the training this loop starts: if one arrives meanwhile,
      // serve it first instead of waiting for it (it would wait for us).
      await condition(() => allHandlersFinished() || rules.wake !== seenWake);
      if (rules.wake !== seenWake) continue;
      const state: CarriedState = { ...s, generation: s.generation + 1 };
      // The server drops a signal this run sent if the run closes before it is delivered (found
      // under load: new thresholds lost at continue-as-new); the next run sends them again.
      // Guarded: runs recorded before continued as new without it.
      const redeliver = (thresholdsInFlight || nextThresholds !== undefined) && patched('redeliver-thresholds');
      await continueAsNew<typeof modelLifecycle>({ model, maxHistoryEvents: input.maxHistoryEvents, state, ...(redeliver ? { redeliverThresholds: true } : {}) });
    }
    const timeout = eligibleAt === undefined ? undefined : eligibleAt === Number.POSITIVE_INFINITY ? undefined : eligibleAt - now;
    if (eligibleAt !== undefined) {
      const last = s.decisions[s.decisions.length - 1];
      const why = rules.budgetLeft(now) ? 'cooldown' : 'daily budget used';
      if (last?.kind !== 'deferred') decide('deferred', `${s.pending.length} trigger(s) wait (${why}) until ${Number.isFinite(eligibleAt) ? new Date(eligibleAt).toISOString() : 'the budget is raised'}`);
    }
    if (timeout === undefined) await condition(() => rules.wake !== seenWake);
    else await condition(() => rules.wake !== seenWake, timeout);
  }
}
