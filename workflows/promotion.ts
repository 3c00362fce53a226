import { ApplicationFailure, CancellationScope, condition, defineQuery, defineSignal, proxySinks, setHandler, setWorkflowOptions, sleep, TemporalFailure, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { DeploymentActivities, Traffic } from '../activities/deployment';
import type { MlopsMetricSinks } from './contracts/metric-sinks';
import { APPROVE_SIGNAL, REJECT_SIGNAL, ROLLBACK_SIGNAL, STATUS_QUERY, promotionWorkflowId } from './contracts/names';
import { lazyActivities, taskQueues } from './contracts/task-queues';

export { promotionWorkflowId };
import { parseInput } from './input';
import { STRATEGIES, STRATEGY_NAMES } from './strategies';
import { MODEL_NAME } from './contracts/training-spec';
import { versioning } from './contracts/versioning';

/**
 * promotion: deploy a registered version next to production, prove it (contract test, load
 * gate), optionally wait for a human, then move traffic — at once, in canary steps with gates, or
 * after a shadow bake — and move the `production` alias. Every step that changes serving has a
 * compensation; a failed gate, a rejection or a `rollback` signal runs them in reverse.
 */

export const promotionInput = z
  .object({
    model: z.string().regex(MODEL_NAME, 'must be a model name'),
    /** The version to promote; left out with `rollback: true`. */
    version: z.number().int().min(1).optional(),
    /** Return at once, without gates, to the version production replaced most recently. */
    rollback: z.boolean().default(false),
    reason: z.string().max(500).optional(),
    strategy: z.enum(STRATEGY_NAMES).default('canary'),
    canarySteps: z.array(z.number().gt(0).max(100)).min(1).max(10).default([5, 25, 50, 100]),
    bakeSeconds: z.number().min(0).max(7 * 24 * 3600).default(60),
    /** The longest a canary or shadow stage bakes while it waits for `minCanaryRows`; then it fails for want of evidence. */
    maxBakeSeconds: z.number().min(0).max(7 * 24 * 3600).default(600),
    contractRows: z.number().int().min(1).max(10_000).default(200),
    loadTest: z.object({ seconds: z.number().min(0.5).max(600).default(5), concurrency: z.number().int().min(1).max(256).default(8) }).strict().default({ seconds: 5, concurrency: 8 }),
    gates: z
      .object({
        maxContractDiff: z.number().min(0).default(1e-5),
        maxErrorRate: z.number().min(0).max(1).default(0.01),
        maxP99Ms: z.number().gt(0).default(100),
        maxPredictionPsi: z.number().min(0).default(0.2),
        /** Rows the canary must have served before its gate is judged. */
        minCanaryRows: z.number().int().min(0).default(20),
        /** Once this many of the candidate's rows have labels, its log loss is judged against stable's (0: never). */
        minLabeledRows: z.number().int().min(0).default(50),
        /** How much worse than stable's the candidate's log loss on labelled rows may be. */
        maxLogLossIncrease: z.number().min(0).default(0.02),
        /** A regression's counterpart: how much higher than stable's, relative, the candidate's RMSE on labelled rows may be (0.05: 5%). */
        maxRmseIncrease: z.number().min(0).default(0.05),
      })
      .strict()
      .default({ maxContractDiff: 1e-5, maxErrorRate: 0.01, maxP99Ms: 100, maxPredictionPsi: 0.2, minCanaryRows: 20, minLabeledRows: 50, maxLogLossIncrease: 0.02, maxRmseIncrease: 0.05 }),
    approval: z.object({ timeoutSeconds: z.number().int().min(1).max(30 * 24 * 3600) }).strict().optional(),
    /** After promotion, how long a `rollback` signal can still return to the previous version. */
    watchSeconds: z.number().min(0).max(30 * 24 * 3600).default(0),
  })
  .strict()
  .refine((i) => i.canarySteps.every((w, k) => k === 0 || w > i.canarySteps[k - 1]!), { message: 'canary steps must increase', path: ['canarySteps'] })
  .refine((i) => (i.version === undefined) === i.rollback, { message: 'give a version to promote, or rollback: true (not both)', path: ['version'] });

export type PromotionInput = z.input<typeof promotionInput>;
export type PromotionInputParsed = z.output<typeof promotionInput>;

export interface PromotionStatus {
  model: string;
  candidate: number;
  previous: number | null;
  stage: string;
  traffic?: Traffic;
  figures: Record<string, unknown>;
  outcome?: 'promoted' | 'rolled-back' | 'rejected';
  reason?: string;
}

export const promotionStatusQuery = defineQuery<PromotionStatus>(STATUS_QUERY);
export const approveSignal = defineSignal<[{ by?: string }?]>(APPROVE_SIGNAL);
export const rejectSignal = defineSignal<[{ by?: string; reason?: string }?]>(REJECT_SIGNAL);
export const rollbackSignal = defineSignal<[{ reason?: string }?]>(ROLLBACK_SIGNAL);

const acts = lazyActivities<DeploymentActivities>(() => ({ taskQueue: taskQueues().control, startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['NotFound', 'Rejected', 'ModelServerRefused', 'ConfigError', 'NoSample', 'ContractFailed'] } }));
// deploy and setTraffic wait, heartbeating, until every model server applied the change: a
// worker that dies meanwhile is noticed within the heartbeat timeout, not the 2-minute limit.
const servingActs = lazyActivities<Pick<DeploymentActivities, 'deploy' | 'setTraffic'>>(() => ({
  taskQueue: taskQueues().control,
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['NotFound', 'Rejected', 'ModelServerRefused', 'ConfigError', 'NoSample', 'ContractFailed'] },
}));
const loadActs = lazyActivities<DeploymentActivities>(() => ({ taskQueue: taskQueues().control, startToCloseTimeout: '15 minutes', heartbeatTimeout: '15 minutes', retry: { maximumAttempts: 2 } }));

class GateFailed extends Error {}

/** Immediate rollback: traffic and the production alias back to the version production replaced. */
async function rollbackNow(model: string, reason?: string): Promise<PromotionStatus> {
  const status: PromotionStatus = { model, candidate: 0, previous: null, stage: 'rolling-back', figures: {}, reason: reason ?? 'rollback' };
  setHandler(promotionStatusQuery, () => status);
  status.previous = await acts.currentProduction({ model });
  const target = await acts.previousProduction({ model });
  if (target === null) throw ApplicationFailure.nonRetryable(`${model}: no earlier production version to roll back to (none held production before the current one without being rolled back)`, 'NothingToRollBack');
  status.candidate = target;
  // Traffic first: users get the old version at once; the alias follows.
  await servingActs.setTraffic({ model, traffic: { stable: target } });
  status.traffic = { stable: target };
  await acts.setProduction({ model, version: target, kind: 'rollback', reason: status.reason });
  status.outcome = 'rolled-back';
  status.stage = 'done';
  return status;
}

// Worker Versioning: A promotion finishes on the build it started on: one release drives the whole rollout.
setWorkflowOptions(versioning('PINNED'), promotion);

export async function promotion(raw: PromotionInput): Promise<PromotionStatus> {
  const input = parseInput(promotionInput, raw, 'promotion');
  if (workflowInfo().workflowId !== promotionWorkflowId(input.model)) {
    throw ApplicationFailure.nonRetryable(
      `a promotion of ${input.model} must run with workflow id ${promotionWorkflowId(input.model)} (one at a time per model); got ${workflowInfo().workflowId}`,
      'InvalidInput',
    );
  }
  const { mlopsMetrics } = proxySinks<MlopsMetricSinks>();
  const strategy = input.rollback ? 'rollback' : input.strategy;
  try {
    const status = input.rollback ? await rollbackNow(input.model, input.reason) : await promote(input);
    mlopsMetrics.promotion({ model: input.model, strategy, outcome: status.outcome ?? 'failed' });
    return status;
  } catch (err) {
    // Only a failure that ends the run; anything else fails the workflow task, which is retried.
    if (err instanceof TemporalFailure) mlopsMetrics.promotion({ model: input.model, strategy, outcome: 'failed' });
    throw err;
  }
}

async function promote(input: PromotionInputParsed): Promise<PromotionStatus> {
  const version = input.version!;
  const status: PromotionStatus = { model: input.model, candidate: version, previous: null, stage: 'starting', figures: {} };
  let decision: 'approve' | 'reject' | undefined;
  let rollbackAsked: string | undefined;
  setHandler(promotionStatusQuery, () => status);
  setHandler(approveSignal, () => void (decision ??= 'approve'));
  setHandler(rejectSignal, (r) => {
    decision ??= 'reject';
    status.reason ??= r?.reason ? `rejected: ${r.reason}` : 'rejected by signal';
  });
  setHandler(rollbackSignal, (r) => void (rollbackAsked ??= r?.reason ?? 'rollback signal'));

  const compensations: Array<() => Promise<void>> = [];
  const setTraffic = async (traffic: Traffic, undo?: Traffic) => {
    await servingActs.setTraffic({ model: input.model, traffic });
    status.traffic = traffic;
    if (undo) compensations.unshift(async () => {
      await servingActs.setTraffic({ model: input.model, traffic: undo });
      status.traffic = undo;
    });
  };
  const gate = (name: string, ok: boolean, figures: unknown, why?: string) => {
    status.figures[name] = figures;
    if (!ok) throw new GateFailed(why ? `${name}: ${why}` : `${name} gate failed: ${JSON.stringify(figures)}`);
    if (rollbackAsked) throw new GateFailed(`rollback asked: ${rollbackAsked}`);
  };

  try {
    status.previous = await acts.currentProduction({ model: input.model });
    if (status.previous === version) throw ApplicationFailure.nonRetryable(`${input.model} v${version} is already in production`, 'InvalidInput');
    status.stage = 'staging';
    await servingActs.deploy({ model: input.model, version: version, slot: 'staging' });
    status.stage = 'contract-test';
    const contract = await acts.contractTest({ model: input.model, version: version, rows: input.contractRows });
    gate('contract', contract.maxAbsDiff <= input.gates.maxContractDiff, contract);
    status.stage = 'load-test';
    const load = await loadActs.loadTest({ model: input.model, version: version, ...input.loadTest });
    gate('load', load.errorRate <= input.gates.maxErrorRate && load.p99Ms <= input.gates.maxP99Ms, load);

    if (input.approval) {
      status.stage = 'awaiting-approval';
      const answered = await condition(() => decision !== undefined, input.approval.timeoutSeconds * 1000);
      if (!answered) status.reason = `no approval within ${input.approval.timeoutSeconds}s`;
      if (decision !== 'approve') {
        status.outcome = 'rejected';
        status.stage = 'done';
        status.reason ??= 'rejected';
        return status;
      }
    }

    const prev = status.previous;
    if (prev !== null) {
      await STRATEGIES[input.strategy].rollout({
        input,
        candidate: version,
        production: prev,
        status,
        acts,
        setTraffic,
        gate,
        sleep,
        now: () => new Date().toISOString(),
      });
    }

    status.stage = 'promoting';
    await setTraffic({ stable: version }, prev !== null ? { stable: prev } : undefined);
    const moved = await acts.setProduction({ model: input.model, version: version, kind: 'promote', reason: input.reason ?? `${input.strategy} promotion${prev !== null ? ` over v${prev}` : ''}` });
    // Runs before this return value existed read undefined here.
    if (moved?.signatureChange) status.figures['breaking signature change'] = moved.signatureChange;
    // The reason is read when the compensation runs: by then it says which gate or signal failed.
    if (prev !== null) compensations.unshift(async () => void (await acts.setProduction({ model: input.model, version: prev, kind: 'revert', reason: status.reason })));
    if (input.watchSeconds > 0) {
      status.stage = 'watching';
      await condition(() => rollbackAsked !== undefined, input.watchSeconds * 1000);
      if (rollbackAsked) throw new GateFailed(`rollback asked: ${rollbackAsked}`);
    }
    status.outcome = 'promoted';
    status.stage = 'done';
    return status;
  } catch (err) {
    if (!(err instanceof GateFailed)) throw err;
    status.reason = err.message;
    status.stage = 'rolling-back';
    // Compensations must run even if the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      for (const undo of compensations) await undo();
    });
    status.outcome = 'rolled-back';
    status.stage = 'done';
    return status;
  }
}
