import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  log,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { DeploymentActivities } from '../activities/deployment';
import type { TrainingResult } from './continuous-training';
import { CONTINUOUS_TRAINING, MONITORING, lifecycleWorkflowId, monitoringWorkflowId, promotionWorkflowId } from './definitions';
import { lazyActivities, taskQueues } from './task-queues';
import { issueLines, parseInput } from './input';
import {
  lifecyclePolicy,
  lifecycleStatusQuery,
  modelName,
  newDataRequest,
  newDataSignal,
  retrainRequest,
  retrainSignal,
  setPolicySignal,
  setThresholdsSignal,
  STAND_IN_DATA,
  trainingSpecInput,
  type LifecycleDecision,
  type LifecycleDecisionKind,
  type LifecyclePolicy,
  type LifecycleStatus,
  type MonitoringInput,
  type RetrainTrigger,
} from './lifecycle-api';
import type { PromotionInput, PromotionStatus } from './promotion';
import { trainingSpec, type TrainingSpec } from './training-spec';

/**
 * modelLifecycle: the one stable address of a model (`model/<name>`). Every trigger — CLI,
 * schedule, monitoring, webhook, new data — signals it (signal-with-start). It never runs two
 * trainings of one model at once: triggers that arrive during a training coalesce into one
 * follow-up, duplicates (same dedupe key) are dropped, and a cooldown and a daily budget from
 * its policy pace the rest. It runs continuousTraining and, for an accepted candidate,
 * promotion as children, keeps monitoring running for the production version, and continues
 * as new with its state when the history grows.
 */

const MAX_DECISIONS = 100;
const MAX_PENDING = 50;
const MAX_DATA_URIS = 64;
const MAX_SEEN_KEYS = 5000;

const carriedState = z
  .object({
    policy: lifecyclePolicy,
    production: z.number().int().nullable(),
    pending: z.array(retrainRequest).max(MAX_PENDING),
    pendingDropped: z.number().int().min(0).default(0),
    dataUris: z.array(z.string()).max(MAX_DATA_URIS),
    seen: z.record(z.string(), z.number()),
    trainingsToday: z.object({ day: z.string(), count: z.number().int().min(0) }),
    lastTrainingEndedAt: z.number().optional(),
    decisions: z.array(z.custom<LifecycleDecision>()).max(MAX_DECISIONS),
    counters: z.object({ triggers: z.number(), duplicates: z.number(), coalesced: z.number(), trainings: z.number(), promotions: z.number() }),
    generation: z.number().int().min(1),
  })
  .strict();
type CarriedState = z.output<typeof carriedState>;

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
  })
  .strict();
export type LifecycleInput = z.input<typeof lifecycleInput>;

const registry = lazyActivities<Pick<DeploymentActivities, 'currentProduction'>>(() => ({
  taskQueue: taskQueues().control,
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['NotFound'] },
}));

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const nextUtcMidnight = (ms: number) => Date.parse(`${utcDay(ms)}T00:00:00.000Z`) + 86_400_000;
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

export async function modelLifecycle(raw: LifecycleInput): Promise<never> {
  const input = parseInput(lifecycleInput, raw, 'modelLifecycle');
  const model = input.model;
  if (workflowInfo().workflowId !== lifecycleWorkflowId(model)) {
    throw ApplicationFailure.nonRetryable(
      `the lifecycle of ${model} must run with workflow id ${lifecycleWorkflowId(model)} (one per model); got ${workflowInfo().workflowId}`,
      'InvalidInput',
    );
  }
  const s: CarriedState = input.state ?? {
    policy: checkPolicy(model, input.policy),
    production: null,
    pending: [],
    pendingDropped: 0,
    dataUris: [],
    seen: {},
    trainingsToday: { day: utcDay(Date.now()), count: 0 },
    decisions: [],
    counters: { triggers: 0, duplicates: 0, coalesced: 0, trainings: 0, promotions: 0 },
    generation: 1,
  };
  let running: LifecycleStatus['running'];
  /** Bumped by anything that can change what the main loop should do next. */
  let wake = 0;

  const decide = (kind: LifecycleDecisionKind, detail: string, extra: Partial<LifecycleDecision> = {}) => {
    s.decisions.push({ at: new Date(Date.now()).toISOString(), kind, detail, ...extra });
    if (s.decisions.length > MAX_DECISIONS) s.decisions.splice(0, s.decisions.length - MAX_DECISIONS);
    log.info(`lifecycle ${model}: ${kind}: ${detail}`);
  };

  /** True when the key was seen within the dedupe window (then the trigger is dropped). */
  const duplicate = (key: string | undefined): boolean => {
    if (!key) return false;
    const now = Date.now();
    const horizon = now - s.policy.dedupeWindowSeconds * 1000;
    const at = s.seen[key];
    if (at !== undefined && at >= horizon) return true;
    s.seen[key] = now;
    const keys = Object.keys(s.seen);
    if (keys.length > MAX_SEEN_KEYS) {
      for (const k of keys) if (s.seen[k]! < horizon) delete s.seen[k];
      const left = Object.entries(s.seen).sort((a, b) => a[1] - b[1]);
      for (const [k] of left.slice(0, Math.max(0, left.length - MAX_SEEN_KEYS))) delete s.seen[k];
    }
    return false;
  };

  const accept = (trigger: RetrainTrigger) => {
    s.counters.triggers++;
    if (duplicate(trigger.dedupeKey)) {
      s.counters.duplicates++;
      const last = s.decisions[s.decisions.length - 1];
      // A burst of duplicates is one decision with a count, not a hundred lines pushing history out.
      if (last?.kind === 'duplicate-dropped' && last.figures?.key === trigger.dedupeKey) {
        last.figures = { ...last.figures, count: Number(last.figures?.count ?? 1) + 1 };
      } else {
        decide('duplicate-dropped', `duplicate trigger ${trigger.dedupeKey} dropped`, { source: trigger.source, figures: { key: trigger.dedupeKey, count: 1 } });
      }
      return;
    }
    if (running || s.pending.length) {
      s.counters.coalesced++;
      decide('coalesced', `${trigger.source}: ${trigger.reason} — ${running ? `joins the follow-up after ${running.workflowId}` : 'joins the waiting retrain'}`, {
        source: trigger.source,
        figures: trigger.figures,
      });
    } else {
      decide('trigger', `${trigger.source}: ${trigger.reason}`, { source: trigger.source, figures: trigger.figures });
    }
    if (s.pending.length < MAX_PENDING) s.pending.push(trigger);
    else s.pendingDropped++;
    wake++;
  };

  const onRetrain = (raw: unknown) => {
    const parsed = retrainRequest.safeParse(raw ?? {});
    if (!parsed.success) {
      decide('error', `retrain ignored: ${issueLines(parsed.error).join('; ')}`);
      return;
    }
    accept(parsed.data);
  };

  const onNewData = (raw: unknown) => {
    const parsed = newDataRequest.safeParse(raw ?? {});
    if (!parsed.success) {
      decide('error', `newData ignored: ${issueLines(parsed.error).join('; ')}`);
      return;
    }
    const req = parsed.data;
    if (duplicate(req.dedupeKey)) {
      s.counters.duplicates++;
      decide('duplicate-dropped', `duplicate newData ${req.dedupeKey} dropped`, { source: req.source });
      return;
    }
    const fresh = req.uris.filter((u) => !s.dataUris.includes(u));
    s.dataUris.push(...fresh);
    if (s.dataUris.length > MAX_DATA_URIS) s.dataUris.splice(0, s.dataUris.length - MAX_DATA_URIS);
    decide('new-data', `${fresh.length} new data object(s): ${fresh.slice(0, 3).join(', ')}${fresh.length > 3 ? ', …' : ''}`, { source: req.source });
    if (fresh.length && s.policy.retrainOnNewData) {
      accept({ reason: `new data: ${fresh.length} object(s)`, source: req.source, figures: { uris: fresh.slice(0, 10) } });
    }
  };

  setHandler(retrainSignal, onRetrain);
  setHandler(newDataSignal, onNewData);
  setHandler(setPolicySignal, (raw) => {
    try {
      const next = checkPolicy(model, raw);
      const thresholdsChanged = JSON.stringify(next.monitoring) !== JSON.stringify(s.policy.monitoring);
      s.policy = next;
      decide('policy', 'policy updated');
      if (thresholdsChanged && s.production !== null) {
        // Monitoring may not run (yet): a failed signal only means there is nothing to update.
        getExternalWorkflowHandle(monitoringWorkflowId(model))
          .signal(setThresholdsSignal, next.monitoring.thresholds)
          .catch(() => undefined);
      }
      wake++;
    } catch (err) {
      decide('error', `setPolicy ignored: ${describe(err)}`);
    }
  });
  setHandler(lifecycleStatusQuery, (): LifecycleStatus => {
    const now = Date.now();
    const eligibleAt = s.pending.length ? nextEligibleAt(now) : undefined;
    return {
      model,
      phase: running ? (running.kind === 'training' ? 'training' : 'promoting') : eligibleAt === undefined ? 'idle' : budgetLeft(now) ? 'cooldown' : 'over-budget',
      policy: s.policy,
      production: s.production,
      running,
      pending: s.pending,
      dataUris: s.dataUris,
      trainingsToday: s.trainingsToday,
      lastTrainingEndedAt: s.lastTrainingEndedAt === undefined ? undefined : new Date(s.lastTrainingEndedAt).toISOString(),
      nextEligibleAt: eligibleAt === undefined ? undefined : new Date(eligibleAt).toISOString(),
      decisions: s.decisions,
      counters: s.counters,
      generation: s.generation,
    };
  });

  const budgetLeft = (now: number) => s.trainingsToday.day !== utcDay(now) || s.trainingsToday.count < s.policy.dailyBudget;
  /** When the next training may start, or undefined if it may start now. */
  function nextEligibleAt(now: number): number | undefined {
    let at = now;
    if (s.lastTrainingEndedAt !== undefined) at = Math.max(at, s.lastTrainingEndedAt + s.policy.cooldownSeconds * 1000);
    if (!budgetLeft(at)) at = s.policy.dailyBudget === 0 ? Number.POSITIVE_INFINITY : nextUtcMidnight(at);
    return at > now ? at : undefined;
  }

  const ensureMonitoring = async () => {
    if (s.production === null || !s.policy.monitoring.enabled) return;
    const args: MonitoringInput = { model, periodSeconds: s.policy.monitoring.periodSeconds, thresholds: s.policy.monitoring.thresholds };
    try {
      await startChild(MONITORING, {
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
    const triggers = s.pending.splice(0);
    s.pendingDropped = 0;
    const now = Date.now();
    let spec: TrainingSpec;
    try {
      spec = buildTrainingSpec(model, s.policy, s.dataUris);
    } catch (err) {
      // Nothing ran, so nothing is counted against the budget; the triggers are answered with the error.
      decide('error', `no training for ${triggers.length} trigger(s): ${describe(err)}`);
      return;
    }
    if (s.trainingsToday.day !== utcDay(now)) s.trainingsToday = { day: utcDay(now), count: 0 };
    s.trainingsToday.count++;
    s.counters.trainings++;
    const workflowId = `train-${model}-${s.counters.trainings}-${uuid4().slice(0, 8)}`;
    const sources = [...new Set(triggers.map((t) => t.source))].join(', ');
    running = { kind: 'training', workflowId, startedAt: new Date(now).toISOString(), triggers };
    decide('training-started', `training ${workflowId} for ${triggers.length} trigger(s) (${sources}) on ${'uris' in spec.dataset ? `${spec.dataset.uris.length} data object(s)` : `flights ${spec.dataset.flights.from}..${spec.dataset.flights.to}`}`, {
      workflowId,
      source: triggers[0]?.source,
      figures: triggers[0]?.figures,
    });
    try {
      const result = await executeChild<(spec: TrainingSpec) => Promise<TrainingResult>>(CONTINUOUS_TRAINING, {
        workflowId,
        taskQueue: taskQueues().control,
        args: [spec],
      });
      decide('training-finished', `${workflowId}: v${result.version} ${result.status} (AUC ${result.metrics.auc.toFixed(4)})${result.reasons.length ? `: ${result.reasons.join('; ')}` : ''}`, {
        workflowId,
        version: result.version,
        figures: { auc: result.metrics.auc, logLoss: result.metrics.logLoss, status: result.status },
      });
      if (result.status === 'registered' && s.policy.promote) {
        const promotionId = promotionWorkflowId(model);
        running = { kind: 'promotion', workflowId: promotionId, startedAt: new Date(Date.now()).toISOString(), triggers };
        decide('promotion-started', `promoting v${result.version}`, { workflowId: promotionId, version: result.version });
        const promotionArgs = { ...s.policy.promotion, model, version: result.version } as PromotionInput;
        const p = await executeChild<(i: PromotionInput) => Promise<PromotionStatus>>('promotion', { workflowId: promotionId, taskQueue: taskQueues().control, args: [promotionArgs] });
        s.counters.promotions++;
        decide('promotion-finished', `v${result.version} ${p.outcome}${p.reason ? `: ${p.reason}` : ''}`, { workflowId: promotionId, version: result.version, figures: { outcome: p.outcome } });
        if (p.outcome === 'promoted') s.production = result.version;
      }
    } catch (err) {
      decide('error', `${running?.kind ?? 'cycle'} ${running?.workflowId ?? ''} failed: ${describe(err)}`, { workflowId: running?.workflowId });
    } finally {
      running = undefined;
      s.lastTrainingEndedAt = Date.now();
    }
  };

  for (const t of input.triggers ?? []) onRetrain(t);
  for (const d of input.newData ?? []) onNewData(d);

  if (!input.state) {
    try {
      s.production = await registry.currentProduction({ model });
    } catch {
      s.production = null; // a model not in the registry yet has no production version
    }
  }
  await ensureMonitoring();

  for (;;) {
    const seenWake = wake;
    const now = Date.now();
    const eligibleAt = s.pending.length ? nextEligibleAt(now) : undefined;
    if (s.pending.length && eligibleAt === undefined) {
      await cycle();
      await ensureMonitoring();
      continue;
    }
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength >= input.maxHistoryEvents) {
      await condition(allHandlersFinished);
      const state: CarriedState = { ...s, generation: s.generation + 1 };
      await continueAsNew<typeof modelLifecycle>({ model, maxHistoryEvents: input.maxHistoryEvents, state });
    }
    const timeout = eligibleAt === undefined ? undefined : eligibleAt === Number.POSITIVE_INFINITY ? undefined : eligibleAt - now;
    if (eligibleAt !== undefined) {
      const last = s.decisions[s.decisions.length - 1];
      const why = budgetLeft(now) ? 'cooldown' : 'daily budget used';
      if (last?.kind !== 'deferred') decide('deferred', `${s.pending.length} trigger(s) wait (${why}) until ${Number.isFinite(eligibleAt) ? new Date(eligibleAt).toISOString() : 'the budget is raised'}`);
    }
    if (timeout === undefined) await condition(() => wake !== seenWake);
    else await condition(() => wake !== seenWake, timeout);
  }
}
