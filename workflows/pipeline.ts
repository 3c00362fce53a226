import { ActivityFailure, ApplicationFailure, TimeoutFailure, condition, isCancellation, workflowInfo } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { StepCacheLookup, StepCall, StepOutcome } from '../activities/steps';
import { stableJson } from './contracts/stable-json';

/**
 * The step engine shared by our pipelines. A pipeline is a list of named steps, each one
 * activity call; the engine keeps every step's state for the `status` query, skips steps that
 * already succeeded with the same inputs (same-run resume), asks the step cache for the
 * outputs of an earlier run (`resumeFrom`), and turns a step that failed for good into a
 * pause that a `resume` signal ends.
 */

export type StepStateName = 'pending' | 'running' | 'succeeded' | 'cached' | 'failed' | 'skipped';

export interface StepState {
  name: string;
  state: StepStateName;
  queue?: string;
  /** Activity attempts, summed over resumes. */
  attempts: number;
  /** How many times the step was started (1 + resumes that re-ran it). */
  runs: number;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  worker?: string;
  inputs?: unknown;
  outputs?: unknown;
  error?: string;
  errorType?: string;
  /** For a step served from the cache: the run it came from. */
  cachedFrom?: string;
  /**
   * `temporal workflow reset --event-id` to this event re-runs the run from this step: the
   * completion of the workflow task that scheduled it (the task's start is the history length
   * the workflow saw then; its completion is the next event).
   */
  resetEventId?: number;
  notes: string[];
}

export type PipelineState = 'running' | 'awaiting-resume' | 'succeeded' | 'rejected' | 'failed' | 'aborted';

export interface PipelineFailure {
  step: string;
  message: string;
  type?: string;
  details?: unknown;
  /** The failed step's reset point (see StepState.resetEventId). */
  resetEventId?: number;
}

export interface PipelineStatus {
  pipeline: string;
  workflowId: string;
  state: PipelineState;
  currentStep?: string;
  resumeFrom?: string;
  pipelineRunId?: string;
  steps: StepState[];
  failure?: PipelineFailure;
  /** Number of `resume` signals acted on. */
  resumes: number;
  result?: unknown;
}

/** A step that failed after its retries, or with a non-retryable error. */
export class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly failure: PipelineFailure,
  ) {
    super(`step ${step} failed: ${failure.message}`);
    this.name = 'StepFailed';
  }
}

export interface StepHandle {
  /** Records where the step is being sent (fallback pools change it). */
  queue(name: string): void;
  note(message: string): void;
}

export interface StepOptions {
  /** Whether an earlier run's output may stand in (resumeFrom). Default true. */
  cacheable?: boolean;
}

type CacheFn = (lookup: StepCacheLookup) => Promise<{ hit: false } | { hit: true; output: unknown; fromWorkflowId: string }>;

/** The innermost Temporal failure's message, type and details, whatever wraps it. */
export function describeStepFailure(step: string, err: unknown): PipelineFailure {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) {
      const [details] = (cause.details ?? []) as unknown[];
      return { step, message: cause.message, type: cause.type ?? undefined, details };
    }
    if (cause instanceof TimeoutFailure) return { step, message: `activity timed out (${cause.timeoutType === undefined ? 'unknown' : (TimeoutType[cause.timeoutType] ?? cause.timeoutType)})`, type: 'Timeout' };
    if (cause) return { step, message: cause.message, type: cause.name };
  }
  return { step, message: err instanceof Error ? err.message : String(err) };
}

export function isScheduleToStartTimeout(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

export class Pipeline {
  readonly status: PipelineStatus;
  private readonly inputKeys = new Map<string, string>();

  constructor(
    pipeline: string,
    stepNames: string[],
    private readonly opts: { resumeFrom?: string; lookupCache?: CacheFn },
  ) {
    this.status = {
      pipeline,
      workflowId: workflowInfo().workflowId,
      state: 'running',
      resumeFrom: opts.resumeFrom,
      steps: stepNames.map((name) => ({ name, state: 'pending', attempts: 0, runs: 0, notes: [] })),
      resumes: 0,
    };
  }

  set pipelineRunId(id: string) {
    this.status.pipelineRunId = id;
  }

  step(name: string): StepState {
    let s = this.status.steps.find((x) => x.name === name);
    if (!s) {
      s = { name, state: 'pending', attempts: 0, runs: 0, notes: [] };
      this.status.steps.push(s);
    }
    return s;
  }

  /**
   * Runs one step, or returns its output without running it when it already succeeded in this
   * run with the same inputs, or when the step cache has it from the `resumeFrom` run.
   */
  async run<I, O>(name: string, inputs: I, call: (c: StepCall<I>, h: StepHandle) => Promise<StepOutcome<O>>, options: StepOptions = {}): Promise<O> {
    const s = this.step(name);
    const key = stableJson(inputs);
    if ((s.state === 'succeeded' || s.state === 'cached') && this.inputKeys.get(name) === key) return s.outputs as O;
    const ctx = { pipelineRunId: this.status.pipelineRunId ?? '', step: name };
    this.status.currentStep = name;
    s.inputs = inputs;
    s.error = undefined;
    s.errorType = undefined;

    if (this.opts.resumeFrom && this.opts.lookupCache && options.cacheable !== false) {
      const hit = await this.opts.lookupCache({ ctx, resumeFrom: this.opts.resumeFrom, inputs });
      if (hit.hit) {
        s.state = 'cached';
        s.cachedFrom = hit.fromWorkflowId;
        s.outputs = hit.output;
        s.finishedAt = new Date().toISOString();
        this.inputKeys.set(name, key);
        return hit.output as O;
      }
    }

    s.state = 'running';
    s.runs++;
    s.startedAt = new Date().toISOString();
    s.finishedAt = undefined;
    s.resetEventId = workflowInfo().historyLength + 1;
    const started = Date.now();
    try {
      const outcome = await call({ ctx, inputs }, { queue: (q) => (s.queue = q), note: (m) => s.notes.push(m) });
      s.state = 'succeeded';
      s.attempts += outcome.attempt;
      s.worker = outcome.worker;
      s.outputs = outcome.output;
      this.inputKeys.set(name, key);
      return outcome.output;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const failure = { ...describeStepFailure(name, err), resetEventId: s.resetEventId };
      const details = failure.details as { attempt?: number } | undefined;
      s.attempts += typeof details?.attempt === 'number' ? details.attempt : 1;
      s.state = 'failed';
      s.error = failure.message;
      s.errorType = failure.type;
      throw new StepFailed(name, failure);
    } finally {
      s.finishedAt = new Date().toISOString();
      s.durationMs = Date.now() - started;
    }
  }

  /** Marks steps that will not run (e.g. after a rejection). */
  skip(...names: string[]): void {
    for (const n of names) {
      const s = this.step(n);
      if (s.state === 'pending') s.state = 'skipped';
    }
  }

  /**
   * Runs `body` until it finishes. When a step fails for good and pausing is on, waits in
   * `awaiting-resume` for a decision; `resume` runs the body again (succeeded steps return
   * their outputs at once), `abort` or the timeout end the run.
   */
  async runResumable<T>(
    body: () => Promise<T>,
    opts: {
      pause: boolean;
      /** Whether this failure is worth a pause (default: every one); one that is not ends the run at once. */
      pauseFor?: (failure: PipelineFailure) => boolean;
      timeoutMs: number;
      nextDecision: (timeoutMs: number) => Promise<'resume' | 'abort' | 'timeout'>;
    },
  ): Promise<T> {
    for (;;) {
      try {
        const result = await body();
        this.status.currentStep = undefined;
        this.status.failure = undefined;
        return result;
      } catch (err) {
        if (!(err instanceof StepFailed)) throw err;
        this.status.failure = err.failure;
        if (!opts.pause) {
          this.status.state = 'failed';
          throw ApplicationFailure.nonRetryable(err.message, 'StepFailed', err.failure);
        }
        if (opts.pauseFor && !opts.pauseFor(err.failure)) {
          this.status.state = 'failed';
          throw ApplicationFailure.nonRetryable(`${err.message} (no resume can fix this, so the run did not pause)`, 'StepFailed', err.failure);
        }
        this.status.state = 'awaiting-resume';
        const decision = await opts.nextDecision(opts.timeoutMs);
        if (decision === 'abort') {
          this.status.state = 'aborted';
          throw ApplicationFailure.nonRetryable(`aborted while paused after: ${err.message}`, 'Aborted', err.failure);
        }
        if (decision === 'timeout') {
          this.status.state = 'failed';
          throw ApplicationFailure.nonRetryable(`no resume within ${Math.round(opts.timeoutMs / 3_600_000)} h after: ${err.message}`, 'ResumeTimeout', err.failure);
        }
        this.status.resumes++;
        this.status.state = 'running';
      }
    }
  }
}

/** Waits for a resume/abort decision recorded by the signal handlers. */
export function decisionWaiter(pending: { decision?: 'resume' | 'abort' }) {
  return async (timeoutMs: number): Promise<'resume' | 'abort' | 'timeout'> => {
    const got = await condition(() => pending.decision !== undefined, timeoutMs);
    if (!got) return 'timeout';
    const d = pending.decision!;
    pending.decision = undefined;
    return d;
  };
}
