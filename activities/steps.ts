import { ApplicationFailure, CancelledFailure, activityInfo, cancellationDetails, heartbeat, log } from '@temporalio/activity';
import { waitingOutOutages } from './dependency-outage';
import type { Kysely } from 'kysely';
import type { Database } from '../infra/db/schema';
import { finishPipelineRun, findCachedStep, getPipelineRun, upsertPipelineRun, upsertStepRun } from '../infra/db/repositories';
import { stableJson } from '../workflows/contracts/stable-json';
import type { StepFix } from '../workflows/contracts/step-fix';
import { sha256Hex } from './hash';
import { stepDuration } from './step-metrics';

/**
 * The activity side of the step engine (workflows/pipeline.ts): every step activity takes a
 * `StepCall` and returns a `StepOutcome`, records its step row (with the cache key) in the
 * metadata store, and reports its attempt number — also on failure, in the failure's details.
 */

export interface StepContext {
  pipelineRunId: string;
  step: string;
}

export interface StepCall<I> {
  ctx: StepContext;
  inputs: I;
  /**
   * What the step needs of its worker, beside its inputs (so not in its cache key): on a GPU
   * queue, `gpu` GPUs leased for the step (the train step's `resources.gpu`; default 1).
   */
  resources?: { gpu?: number };
}

/** What a step implementation gets beside its inputs: the call, and the id of its step row (null outside a pipeline run). */
export type StepRun<I> = StepCall<I> & { stepRunId: string | null };

export interface StepOutcome<O> {
  output: O;
  attempt: number;
  worker: string;
  ms: number;
}

export interface StepCacheLookup {
  ctx: StepContext;
  resumeFrom: string;
  inputs: unknown;
}

export interface StepDeps {
  db: Kysely<Database>;
  codeVersion: string;
  worker: { identity: string };
}

/** The step cache key: step name, code version and inputs — what determines the output. */
export function stepCacheKey(step: string, codeVersion: string, inputs: unknown): string {
  return sha256Hex(`${step}\n${codeVersion}\n${stableJson(inputs)}`);
}

/** The workflow that scheduled the current activity (ours always run under one). */
export function currentWorkflow(): { workflowId: string; runId: string } {
  const info = activityInfo();
  if (!info.workflowExecution) throw new Error(`activity ${info.activityType} must be scheduled by a workflow`);
  return info.workflowExecution;
}

/**
 * A user-facing error that retrying cannot fix (bad data, unknown trainer...), with what can:
 * the workflow pauses for a `resume` only when `fix` names an override or an action.
 */
export function dataError(message: string, fix: StepFix, details: Record<string, unknown> = {}): ApplicationFailure {
  return ApplicationFailure.create({ message, type: 'DataError', nonRetryable: true, details: [{ ...details, fix }] });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Wraps a step implementation: records the step row when it starts and when it ends (with its
 * duration), and carries the attempt
 * number in failures so the workflow's status can count attempts exactly.
 */
export function defineStep<I, O>(deps: StepDeps, fn: (inputs: I, call: StepRun<I>) => Promise<O>, opts: { keepAlive?: boolean; waitOutOutages?: boolean } = { keepAlive: true }) {
  // A step that heartbeats by itself (train) waits out outages where it knows how to.
  const waitOut = opts.waitOutOutages ?? opts.keepAlive !== false;
  return async (call: StepCall<I>): Promise<StepOutcome<O>> => {
    const info = activityInfo();
    const started = performance.now();
    // Steps that do not report progress themselves still heartbeat, so a dead worker is noticed
    // within the heartbeat timeout rather than the start-to-close timeout.
    const keepAlive = opts.keepAlive ? setInterval(() => heartbeat({ step: call.ctx.step, elapsedMs: Math.round(performance.now() - started) }), 5000) : undefined;
    const cacheKey = stepCacheKey(call.ctx.step, deps.codeVersion, call.inputs);
    const startedAt = new Date();
    const record = async (status: 'running' | 'succeeded' | 'failed' | 'paused', outputs?: unknown, error?: string): Promise<string | null> => {
      if (!call.ctx.pipelineRunId) return null;
      try {
        const row = await upsertStepRun(deps.db, {
          pipelineRunId: call.ctx.pipelineRunId,
          stepName: call.ctx.step,
          status,
          attempts: info.attempt,
          cacheKey: status === 'succeeded' ? cacheKey : null,
          inputs: call.inputs,
          outputs,
          error: error ?? null,
          worker: deps.worker.identity,
          startedAt,
          ...(status === 'running' ? {} : { durationMs: Math.round(performance.now() - started) }),
        });
        return row.id;
      } catch (err) {
        // The row is bookkeeping: losing it must not fail a step that did its work.
        if (status === 'succeeded') throw err;
        log.warn(`step ${call.ctx.step}: could not record ${status}: ${errorMessage(err)}`);
        return null;
      }
    };
    // The row exists while the step runs: started, by whom, which attempt.
    const stepRunId = await record('running');
    try {
      const run = () => fn(call.inputs, { ...call, stepRunId });
      const output = await (waitOut ? waitingOutOutages(`step ${call.ctx.step}`, run) : run());
      // Still heartbeating: the store may be the one that is down.
      await waitingOutOutages(`step ${call.ctx.step}: recording its result`, () => record('succeeded', output)).finally(() => clearInterval(keepAlive));
      stepDuration.observe({ step: call.ctx.step, outcome: 'succeeded' }, (performance.now() - started) / 1000);
      const ms = Math.round(performance.now() - started);
      log.info(`step ${call.ctx.step} succeeded in ${ms} ms (attempt ${info.attempt})`);
      return { output, attempt: info.attempt, worker: deps.worker.identity, ms };
    } catch (err) {
      clearInterval(keepAlive);
      if (cancellationDetails()?.paused) {
        // An operator's `temporal activity pause`: the server holds the step (and its last
        // heartbeat, the checkpoint) until `temporal activity unpause`; not a failure.
        await record('paused', undefined, `paused by an operator: ${errorMessage(err)}`);
        log.info(`step ${call.ctx.step} paused by an operator (attempt ${info.attempt}); temporal activity unpause continues it`);
        throw new CancelledFailure('Activity paused');
      }
      await record('failed', undefined, errorMessage(err));
      stepDuration.observe({ step: call.ctx.step, outcome: 'failed' }, (performance.now() - started) / 1000);
      log.warn(`step ${call.ctx.step} attempt ${info.attempt} failed: ${errorMessage(err)}`);
      if (err instanceof ApplicationFailure) {
        const [details] = (err.details ?? []) as unknown[];
        throw ApplicationFailure.create({
          message: err.message,
          type: err.type ?? undefined,
          nonRetryable: err.nonRetryable ?? undefined,
          details: [{ ...(details && typeof details === 'object' ? details : details === undefined ? {} : { value: details }), attempt: info.attempt }],
          nextRetryDelay: err.nextRetryDelay,
        });
      }
      throw ApplicationFailure.create({ message: errorMessage(err), type: err instanceof Error ? err.name : 'Error', details: [{ attempt: info.attempt }] });
    }
  };
}

/** Pipeline bookkeeping activities (control queue). */
export function createStepActivities(deps: StepDeps) {
  return {
    async beginPipelineRun(input: { pipeline: string; modelName?: string; spec: unknown }): Promise<{ pipelineRunId: string }> {
      const wf = currentWorkflow();
      const run = await upsertPipelineRun(deps.db, {
        workflowId: wf.workflowId,
        runId: wf.runId,
        pipeline: input.pipeline,
        modelName: input.modelName ?? null,
        spec: input.spec,
        status: 'running',
        codeVersion: deps.codeVersion,
      });
      return { pipelineRunId: run.id };
    },

    async endPipelineRun(input: { pipelineRunId: string; status: string; result: unknown }): Promise<void> {
      await finishPipelineRun(deps.db, input.pipelineRunId, input.status, input.result);
    },

    /**
     * The step cache: the output of the `resumeFrom` run's step with the same key, if it
     * succeeded there. A hit is recorded as a `cached` step row of this run.
     */
    async lookupStepCache(input: StepCacheLookup): Promise<{ hit: false } | { hit: true; output: unknown; fromWorkflowId: string }> {
      const cacheKey = stepCacheKey(input.ctx.step, deps.codeVersion, input.inputs);
      const earlier = await getPipelineRun(deps.db, input.resumeFrom);
      if (!earlier) throw dataError(`resumeFrom: no pipeline run with workflow id ${JSON.stringify(input.resumeFrom)}`, { overrides: [] });
      const found = await findCachedStep(deps.db, cacheKey, earlier.workflow_id);
      if (!found) return { hit: false };
      if (input.ctx.pipelineRunId) {
        await upsertStepRun(deps.db, {
          pipelineRunId: input.ctx.pipelineRunId,
          stepName: input.ctx.step,
          status: 'cached',
          cacheKey,
          inputs: input.inputs,
          outputs: found.outputs,
          worker: deps.worker.identity,
        });
      }
      return { hit: true, output: found.outputs, fromWorkflowId: earlier.workflow_id };
    },

    /** A raw no-op activity: the baseline of the step-overhead benchmark. */
    async noop(): Promise<void> {},

    /** A no-op step: the step engine's own cost (bookkeeping, step row). */
    noopStep: defineStep(deps, async (_input: { i: number }) => ({ ok: true }), { keepAlive: false }),
  };
}
