import { ActivityFailure, type ActivityInterfaceFor, type ActivityOptions, ApplicationFailure, CancellationScope, defineQuery, defineSignal, isCancellation, patched, proxyActivities, setHandler, setWorkflowOptions } from '@temporalio/workflow';
import type { TrainingActivities } from '../activities/continuous-training';
import type { createStepActivities, StepCall, StepOutcome } from '../activities/steps';
import type { TrainOutput } from '../activities/training/train';
import { ABORT_SIGNAL, RESUME_SIGNAL, STATUS_QUERY } from './contracts/names';
import { taskPriority } from './contracts/priority';
import { gpuClassQueue, lazyActivities, taskQueues } from './contracts/task-queues';
import { issueLines, parseInput } from './input';
import { Pipeline, decisionWaiter, isScheduleToStartTimeout, type PipelineStatus, type StepHandle } from './pipeline';
import { MAX_SPEC_BYTES, resolveTask, resumeOverrides, sliceIssues, trainingSpec, type ResumeOverrides, type TrainingSpec, type TrainingSpecInput } from './contracts/training-spec';
import { resumeCanFix } from './contracts/step-fix';
import { versioning } from './contracts/versioning';

const TASK_OVERRIDES = ['label', 'features', 'split'] as const;

/**
 * continuousTraining: snapshot → validate data → prepare → train (GPU queue) → evaluate →
 * validate model → register. Resumable three ways: a step that fails for good pauses the run
 * until `resume` (with optional overrides) or `abort`; `resumeFrom` reuses an earlier run's
 * unchanged steps; training continues from its last heartbeat checkpoint after a crash.
 */

export const STEPS = ['snapshot', 'validate-data', 'prepare', 'train', 'evaluate', 'validate-model', 'register'] as const;

export const trainingStatusQuery = defineQuery<PipelineStatus>(STATUS_QUERY);
/** `resume` re-runs the failed step (and anything whose inputs the overrides change). */
export const resumeSignal = defineSignal<[ResumeOverrides?]>(RESUME_SIGNAL);
export const abortSignal = defineSignal<[{ reason?: string }?]>(ABORT_SIGNAL);

type Steps = TrainingActivities & ReturnType<typeof createStepActivities>;

const RETRY = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;

const controlOptions = (): ActivityOptions => ({
  taskQueue: taskQueues().control,
  startToCloseTimeout: '2 minutes',
  retry: { ...RETRY, maximumAttempts: 10 },
});

const control = lazyActivities<Steps>(controlOptions);

const cpuOptions = (): ActivityOptions => ({
  taskQueue: taskQueues().cpu,
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { ...RETRY, maximumAttempts: 3, nonRetryableErrorTypes: ['DataError'] },
});

interface TrainingResultBase {
  model: string;
  version: number;
  modelVersionId: string;
  status: 'registered' | 'rejected';
  alias?: 'candidate';
  reasons: string[];
  parityMaxAbsDiff?: number;
  modelUri: string;
  modelSha256: string;
  snapshotSha256: string;
  schemaVersion: number;
  dataWarnings: string[];
  resumedFromRound: number;
}

export interface BinaryTrainingResult extends TrainingResultBase {
  task?: undefined;
  metrics: { auc: number; logLoss: number; accuracy: number; precision: number; recall: number; expectedCalibrationError: number };
  baselineAuc: number;
  champion?: { version: number; auc: number };
}

export interface RegressionTrainingResult extends TrainingResultBase {
  task: 'regression';
  metrics: { rmse: number; mae: number; r2: number };
  /** Ridge regression's RMSE on the same split. */
  baselineRmse: number;
  champion?: { version: number; rmse: number };
}

export interface MulticlassTrainingResult extends TrainingResultBase {
  task: 'multiclass';
  classes: Array<string | number>;
  metrics: { macroF1: number; logLoss: number; accuracy: number; recall: Array<number | null> };
  /** Multinomial logistic regression's macro-F1 and log loss on the same split. */
  baseline: { macroF1: number; logLoss: number };
  champion?: { version: number; macroF1: number; logLoss: number };
}

/** Absent `task`: binary, as every result before there were kinds. */
export type TrainingResult = BinaryTrainingResult | RegressionTrainingResult | MulticlassTrainingResult;

/** Queues the train step may go to, in order: the spec's GPU class, then its fallbacks. */
export function trainQueues(spec: TrainingSpec): string[] {
  const r = spec.resources;
  const q = taskQueues();
  if (r.gpu === 0) return [q.cpu];
  const queues = [r.gpuClass ? gpuClassQueue(r.gpuClass) : q.gpu, ...r.fallback.map((f) => (f === 'any' ? q.gpu : gpuClassQueue(f)))];
  return [...new Set(queues)];
}

function applyOverrides(spec: TrainingSpec, o: ResumeOverrides): TrainingSpec {
  const merged = {
    ...spec,
    ...(o.dataset ? { dataset: o.dataset } : {}),
    ...(o.label ? { label: o.label } : {}),
    ...(o.features ? { features: o.features } : {}),
    ...(o.split ? { split: o.split } : {}),
    ...(o.hyperparameters ? { hyperparameters: { ...spec.hyperparameters, ...o.hyperparameters } } : {}),
    ...(o.sampleRows ? { sampleRows: o.sampleRows } : {}),
    ...(o.gates ? { gates: { ...spec.gates, ...o.gates } } : {}),
    ...(o.resources ? { resources: { ...spec.resources, ...o.resources } } : {}),
  };
  const next = parseInput(trainingSpec, merged, 'resume overrides for continuousTraining');
  const issues = sliceIssues(next);
  if (issues.length) throw ApplicationFailure.nonRetryable(`invalid resume overrides for continuousTraining: ${issues.join('; ')}`, 'InvalidInput');
  return next;
}

// Worker Versioning: A run finishes on the build it started on: its steps and their inputs stay one release.
setWorkflowOptions(versioning('PINNED'), continuousTraining);

export async function continuousTraining(rawSpec: TrainingSpecInput): Promise<TrainingResult> {
  const bytes = JSON.stringify(rawSpec ?? null).length;
  if (bytes > MAX_SPEC_BYTES) {
    throw ApplicationFailure.nonRetryable(`invalid continuousTraining input: the spec is ${bytes} bytes, over the ${MAX_SPEC_BYTES}-byte limit; pass data by URI (dataset.uris), not inline`, 'InvalidInput');
  }
  let spec = parseInput(trainingSpec, rawSpec, 'continuousTraining');
  // Guarded: runs started before this check replay without it.
  if (patched('check-slices')) {
    const issues = sliceIssues(spec);
    if (issues.length) throw ApplicationFailure.nonRetryable(`invalid continuousTraining input: ${issues.join('; ')}`, 'InvalidInput');
  }
  // Steps queue by the run's priority (the model is the fairness key) and are named by their
  // step in the history, so `temporal activity … --activity-id train` finds them. Guarded: runs
  // started before replay with the commands they had.
  const stepOptions = patched('step-priority-and-ids');
  const priority = stepOptions ? taskPriority(spec.model, spec.priority) : undefined;
  const named = (step: string): ActivityOptions | Record<string, never> => (stepOptions ? { activityId: step, priority } : {});
  const cpu = (step: string) => proxyActivities<Steps>({ ...cpuOptions(), ...named(step) });
  const p = new Pipeline('continuousTraining', [...STEPS], { resumeFrom: spec.resumeFrom, lookupCache: control.lookupStepCache });
  const pending: { decision?: 'resume' | 'abort'; overrides?: ResumeOverrides } = {};
  const notes: string[] = [];
  let abortRequested: string | undefined;

  setHandler(trainingStatusQuery, () => ({ ...p.status, notes } as PipelineStatus));
  setHandler(resumeSignal, (raw) => {
    if (p.status.state !== 'awaiting-resume') {
      notes.push(`resume ignored: the run is ${p.status.state}, not awaiting-resume`);
      return;
    }
    // Runs started before resume could change the task keep refusing those fields on replay.
    const taskFields = TASK_OVERRIDES.filter((k) => raw && typeof raw === 'object' && k in raw);
    if (taskFields.length && !patched('resume-task-overrides')) {
      notes.push(`resume ignored: Unrecognized key(s) in object: ${taskFields.map((k) => `'${k}'`).join(', ')}`);
      return;
    }
    const parsed = resumeOverrides.safeParse(raw ?? {});
    if (!parsed.success) {
      notes.push(`resume ignored: ${issueLines(parsed.error).join('; ')}`);
      return;
    }
    try {
      applyOverrides(spec, parsed.data);
    } catch (err) {
      notes.push(`resume ignored: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    pending.overrides = parsed.data;
    pending.decision = 'resume';
  });
  setHandler(abortSignal, (raw) => {
    abortRequested = raw?.reason ?? 'abort signal';
    if (p.status.state === 'awaiting-resume') pending.decision = 'abort';
    else notes.push(`abort requested (${abortRequested}): the run stops before its next step`);
  });

  // Guarded: runs started before this check replay without it.
  if (patched('check-trainer')) {
    try {
      await control.checkTrainer({ trainer: spec.trainer, hyperparameters: spec.hyperparameters });
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === 'InvalidInput') throw ApplicationFailure.nonRetryable(`invalid continuousTraining input: ${cause.message}`, 'InvalidInput');
      throw err;
    }
  }
  const { pipelineRunId } = await control.beginPipelineRun({ pipeline: 'continuousTraining', modelName: spec.model, spec });
  p.pipelineRunId = pipelineRunId;
  const waitDecision = decisionWaiter(pending);

  const guard = () => {
    if (abortRequested) {
      p.status.state = 'aborted';
      throw ApplicationFailure.nonRetryable(`aborted: ${abortRequested}`, 'Aborted');
    }
  };

  /** A step on the GPU queues of trainQueues(spec), in turn: the next when no worker took it within scheduleToStartSeconds. */
  const onGpuQueues = async <T>(step: string, h: StepHandle, options: ActivityOptions, run: (steps: ActivityInterfaceFor<Steps>) => Promise<T>): Promise<T> => {
    const queues = trainQueues(spec);
    for (let i = 0; i < queues.length; i++) {
      const queue = queues[i]!;
      const last = i === queues.length - 1;
      h.queue(queue);
      try {
        return await run(proxyActivities<Steps>({ ...options, taskQueue: queue, ...(last ? {} : { scheduleToStartTimeout: `${spec.resources.scheduleToStartSeconds} seconds` }), ...named(step) }));
      } catch (err) {
        if (last || !isScheduleToStartTimeout(err)) throw err;
        h.note(`no worker took ${step} on ${queue} within ${spec.resources.scheduleToStartSeconds}s; failing over to ${queues[i + 1]}`);
      }
    }
    throw ApplicationFailure.nonRetryable(`no queue for ${step}`, 'InvalidInput');
  };

  const trainWithFallback = async (call: StepCall<unknown>, h: StepHandle): Promise<StepOutcome<TrainOutput>> => {
    // The GPU worker leases resources.gpu GPUs for the step (beside its inputs: no cache key
    // changes). Guarded: runs started before the worker honoured it replay with the call they had.
    const gpus = spec.resources.gpu;
    if (gpus > 1 && patched('gpu-count')) call = { ...call, resources: { gpu: gpus } };
    const options: ActivityOptions = {
      startToCloseTimeout: `${spec.training.timeoutMinutes} minutes`,
      heartbeatTimeout: `${spec.training.heartbeatSeconds} seconds`,
      retry: { ...RETRY, maximumAttempts: spec.training.maxAttempts, nonRetryableErrorTypes: ['DataError'] },
    };
    return onGpuQueues('train', h, options, (steps) => steps.train(call as Parameters<Steps['train']>[0]));
  };

  const body = async (): Promise<TrainingResult> => {
    const task = resolveTask(spec);
    guard();
    const snapshot = await p.run('snapshot', { model: spec.model, dataset: spec.dataset }, (c) => cpu('snapshot').snapshot(c));
    guard();
    const validated = await p.run(
      'validate-data',
      // Only an explicit `accept` joins the inputs, so the default keeps the step's cache key.
      { model: spec.model, snapshot: { uri: snapshot.uri, sha256: snapshot.sha256 }, features: task.features, label: task.label, split: task.split, ...(spec.schemaChange === 'accept' ? { schemaChange: 'accept' as const } : {}) },
      (c) => cpu('validate-data').validateData(c),
    );
    guard();
    const data = await p.run(
      'prepare',
      { snapshot: { uri: snapshot.uri, sha256: snapshot.sha256 }, features: task.features, label: task.label, split: task.split, sampleRows: spec.sampleRows, seed: spec.seed },
      (c) => cpu('prepare').prepare(c),
    );
    guard();
    const trained = await p.run(
      'train',
      {
        model: spec.model,
        // `task` (and a multiclass task's classes) only where there is one: a binary run's step inputs (and cache keys) stay what they were.
        data: { train: data.train, test: data.test, features: data.features, ...(data.task ? { task: data.task } : {}), ...(data.classes ? { classes: data.classes } : {}) },
        trainer: spec.trainer,
        command: spec.command,
        hyperparameters: spec.hyperparameters,
        seed: spec.seed,
        checkpointEvery: spec.training.checkpointEvery,
      },
      trainWithFallback,
    );
    guard();
    const evaluation = await p.run(
      'evaluate',
      { model: trained.model, trainerScores: trained.trainerScores, data, threshold: spec.evaluation.threshold, slices: task.slices },
      // On the GPU queues only when the spec asks: without evaluateOn, the step and its history are what they were.
      (c, h) => (spec.resources.evaluateOn === 'gpu' ? onGpuQueues('evaluate', h, cpuOptions(), (steps) => steps.evaluate(c)) : cpu('evaluate').evaluate(c)),
    );
    guard();
    const verdict = await p.run('validate-model', { modelName: spec.model, model: trained.model, data, evaluation, gates: spec.gates }, (c) => cpu('validate-model').validateModel(c), { cacheable: false });
    guard();
    const registered = await p.run(
      'register',
      {
        model: spec.model,
        spec,
        snapshot: { uri: snapshot.uri, sha256: snapshot.sha256, rows: snapshot.rows },
        schemaVersion: validated.schemaVersion,
        data,
        trained: { model: trained.model, trainer: trained.trainer, rounds: trained.rounds, trainSeconds: trained.trainSeconds, device: trained.device },
        evaluation,
        validation: verdict,
      },
      (c) => proxyActivities<Steps>({ ...controlOptions(), ...named('register') }).register(c),
    );
    const common = {
      model: spec.model,
      version: registered.version,
      modelVersionId: registered.modelVersionId,
      status: registered.status,
      alias: registered.alias,
      reasons: verdict.reasons,
      parityMaxAbsDiff: evaluation.parity?.maxAbsDiff,
      modelUri: trained.model.uri,
      modelSha256: trained.model.sha256,
      snapshotSha256: snapshot.sha256,
      schemaVersion: validated.schemaVersion,
      dataWarnings: validated.report.anomalies.map((a) => a.message),
      resumedFromRound: trained.resumedFromRound,
    };
    const champion = verdict.champion;
    if (evaluation.task === 'regression') {
      const m = evaluation.metrics;
      return {
        ...common,
        task: 'regression',
        metrics: { rmse: m.rmse, mae: m.mae, r2: m.r2 },
        baselineRmse: evaluation.baseline.rmse,
        champion: champion && 'rmse' in champion ? { version: champion.version, rmse: champion.rmse } : undefined,
      };
    }
    if (evaluation.task === 'multiclass') {
      const m = evaluation.metrics;
      return {
        ...common,
        task: 'multiclass',
        classes: evaluation.classes,
        metrics: { macroF1: m.macroF1, logLoss: m.logLoss, accuracy: m.accuracy, recall: m.perClass.map((c) => c.recall) },
        baseline: { macroF1: evaluation.baseline.macroF1, logLoss: evaluation.baseline.logLoss },
        champion: champion && 'macroF1' in champion ? { version: champion.version, macroF1: champion.macroF1, logLoss: champion.logLoss } : undefined,
      };
    }
    const m = evaluation.metrics;
    return {
      ...common,
      metrics: { auc: m.auc, logLoss: m.logLoss, accuracy: m.accuracy, precision: m.precision, recall: m.recall, expectedCalibrationError: m.expectedCalibrationError },
      baselineAuc: evaluation.baseline.auc,
      champion: champion && 'auc' in champion ? { version: champion.version, auc: champion.auc } : undefined,
    };
  };

  try {
    const result = await p.runResumable(body, {
      pause: spec.onFailure === 'pause',
      // A failure no resume can fix ends the run at once. Guarded: older runs paused for it.
      pauseFor: (failure) => resumeCanFix(failure.details) || !patched('fail-unfixable-at-once'),
      timeoutMs: spec.resumeTimeoutHours * 3_600_000,
      nextDecision: async (timeoutMs) => {
        const d = await waitDecision(timeoutMs);
        if (d === 'resume' && pending.overrides) {
          spec = applyOverrides(spec, pending.overrides);
          notes.push(`resumed with overrides: ${Object.keys(pending.overrides).join(', ') || 'none'}`);
          pending.overrides = undefined;
        }
        return d;
      },
    });
    p.status.state = result.status === 'registered' ? 'succeeded' : 'rejected';
    p.status.result = result;
    await control.endPipelineRun({ pipelineRunId, status: p.status.state, result });
    return result;
  } catch (err) {
    if (isCancellation(err)) p.status.state = 'aborted';
    else if (p.status.state === 'running' || p.status.state === 'awaiting-resume') p.status.state = 'failed';
    // Record the end even when the run was cancelled: the bookkeeping must not be cancelled with it.
    await CancellationScope.nonCancellable(() =>
      control.endPipelineRun({ pipelineRunId, status: p.status.state, result: { error: err instanceof Error ? err.message : String(err), failure: p.status.failure } }),
    );
    throw err;
  }
}
