import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, ServiceError, type WorkflowExecutionInfo } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import type { temporal } from '@temporalio/proto';
import type { Kysely } from 'kysely';
import { quantile } from '../activities/ml/metrics';
import { signatureOf } from '../activities/training/scoring';
import type { Database } from '../infra/db/schema';
import { registerModelVersion, setAlias, upsertModel } from '../infra/db/repositories';
import { compiledEntry } from '../infra/entry';
import { TEMPORAL_CLI, resolveBinary } from '../infra/binaries';
import { loadConfig } from '../infra/config';
import { createLogger, type Logger } from '../infra/log';
import { PROJECT_ROOT } from '../infra/paths';
import { startTemporalDevServer } from '../infra/services';
import { openRuntime } from '../workers/runtime';
import { atMost, reportRow, writeResult, type BenchRow, type ReportedRow } from './report';
import { lifecycleWorkflowId, monitoringWorkflowId, STATUS_QUERY, TASK_QUEUES } from '../workflows/contracts/names';
import type { MonitoringStatus } from '../workflows/monitoring';
import { lifecycleStatusQuery, type LifecyclePolicyInput, type LifecycleStatus } from '../workflows/contracts/lifecycle';
import type { TrainingSpecInput } from '../workflows/contracts/training-spec';
import { STEPS } from '../workflows/continuous-training';

/**
 * The load run `npm run bench -- load` prints and `test/integration/load.test.ts` checks: many
 * concurrent trainings of different models on our own worker processes (each queue a process, as
 * operators run them), then many model lifecycles with monitoring at once. Every figure is read
 * from the server's histories, not from our own bookkeeping.
 */

export interface LoadOptions {
  client: Client;
  /** Where the worker processes connect. */
  temporal: { address: string; namespace: string };
  /** The stores' environment for the worker processes (DATABASE_URL, ARTIFACT_ROOT, …). */
  workerEnv: NodeJS.ProcessEnv;
  /** The same metadata store, to seed the lifecycles' production versions. */
  db: Kysely<Database>;
  log: Logger;
  /** Prefix of every model and workflow id of this run. */
  tag: string;
  trainings: { runs: number; sampleRows: number; rounds: number };
  lifecycles: {
    count: number;
    /** setPolicy signals each lifecycle gets (each also reaches its monitoring as new thresholds). */
    signals: number;
    signalIntervalMs: number;
    maxHistoryEvents: number;
    periodSeconds: number;
    checksPerRun: number;
  };
  /** How long the whole run may take before it is called stuck. */
  timeoutMs: number;
}

export interface StepTiming {
  step: string;
  queue: string;
  /** Scheduled → completed, the latency a pipeline sees. */
  latencyMs: number;
  /** Scheduled → started: time in the task queue. */
  queueMs: number;
  /** Started → completed: the attempt that succeeded. */
  runMs: number;
  attempt: number;
  startedAt: number;
  completedAt: number;
}

export interface WorkerFigures {
  queues: string;
  pid: number;
  peakRssMiB?: number;
}

export interface LoadFigures {
  trainings: {
    runs: number;
    completed: number;
    failed: Array<{ workflowId: string; reason: string }>;
    registered: number;
    rejected: number;
    wallSeconds: number;
    runsPerMinute: number;
    steps: number;
    stepLatencyMs: { p50: number; p99: number; max: number };
    queueWaitMs: { p50: number; p99: number; max: number };
    /** Per step (activity id): p50 latency and how many ran. */
    perStepP50Ms: Record<string, number>;
    perStepCount: Record<string, number>;
    activityTimeouts: number;
    activityFailures: number;
    retriedSteps: number;
    /** Most activities running at once on the CPU queue, from the histories' started/completed times. */
    peakCpuConcurrency: number;
    cpuSlots: number;
  };
  lifecycles: {
    count: number;
    signals: number;
    wallSeconds: number;
    maxHistoryEvents: number;
    lifecycle: ChainFigures;
    monitoring: ChainFigures;
  };
  workers: WorkerFigures[];
}

export interface ChainFigures {
  /** Workflow ids with at least one run. */
  chains: number;
  /** Runs per chain (continue-as-new makes a chain of runs). */
  minRuns: number;
  maxRuns: number;
  /** The longest history of any one run. */
  maxRunHistory: number;
  /** The most events any chain wrote over all its runs: what one history would hold without continue-as-new. */
  maxChainEvents: number;
}

const stats = (xs: number[]) => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: xs.length ? Math.max(...xs) : 0 });

/** The activities a closed run ran, with their queue and timings, and what went wrong on the way. */
export function activityTimings(history: temporal.api.history.v1.IHistory): { steps: StepTiming[]; timeouts: number; failures: number } {
  const scheduled = new Map<string, { step: string; queue: string; at: number }>();
  const started = new Map<string, { at: number; attempt: number }>();
  const steps: StepTiming[] = [];
  let timeouts = 0;
  let failures = 0;
  for (const e of history.events ?? []) {
    const at = tsToMs(e.eventTime!);
    if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      scheduled.set(String(e.eventId), { step: a.activityId || a.activityType?.name || '?', queue: a.taskQueue?.name ?? '?', at });
    } else if (e.activityTaskStartedEventAttributes) {
      const a = e.activityTaskStartedEventAttributes;
      started.set(String(a.scheduledEventId), { at, attempt: a.attempt ?? 1 });
    } else if (e.activityTaskCompletedEventAttributes) {
      const id = String(e.activityTaskCompletedEventAttributes.scheduledEventId);
      const s = scheduled.get(id);
      const st = started.get(id);
      if (s && st) steps.push({ step: s.step, queue: s.queue, latencyMs: at - s.at, queueMs: st.at - s.at, runMs: at - st.at, attempt: st.attempt, startedAt: st.at, completedAt: at });
    } else if (e.activityTaskTimedOutEventAttributes) {
      timeouts++;
    } else if (e.activityTaskFailedEventAttributes) {
      failures++;
    }
  }
  return { steps, timeouts, failures };
}

/** The most intervals open at one instant. */
export function peakOverlap(intervals: Array<{ startedAt: number; completedAt: number }>): number {
  const edges = intervals.flatMap((i) => [
    [i.startedAt, 1],
    [i.completedAt, -1],
  ]) as Array<[number, number]>;
  // An end at the same instant as a start frees its slot first.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let peak = 0;
  for (const [, d] of edges) peak = Math.max(peak, (open += d));
  return peak;
}

/** Peak resident memory of a Linux process (VmHWM), in MiB; undefined elsewhere or once it is gone. */
function peakRssMiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface WorkerProcess {
  queues: string;
  child: ChildProcess;
  exited: Promise<void>;
  tail: () => string;
}

function startWorker(opts: LoadOptions, queues: string): WorkerProcess {
  const child = spawn(process.execPath, [compiledEntry('workers/dev.ts'), '--queues', queues], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...opts.workerEnv, TEMPORAL_ADDRESS: opts.temporal.address, TEMPORAL_NAMESPACE: opts.temporal.namespace, MLOPS_LOG_LEVEL: 'WARN' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { queues, child, exited, tail: () => log };
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  const killLater = setTimeout(() => w.child.kill('SIGKILL'), 30_000);
  await w.exited;
  clearTimeout(killLater);
}

/** Rejects as soon as a worker process dies: a load run on a dead worker would only time out. */
function watchWorkers(workers: WorkerProcess[]): { died: Promise<never>; stop: () => void } {
  let stopped = false;
  const died = new Promise<never>((_, reject) => {
    for (const w of workers) {
      void w.exited.then(() => {
        if (!stopped) reject(new Error(`the ${w.queues} worker process exited (${w.child.exitCode ?? w.child.signalCode}) during the load run:\n${w.tail()}`));
      });
    }
  });
  died.catch(() => undefined);
  return { died, stop: () => (stopped = true) };
}

async function within<T>(what: string, ms: number, p: Promise<T>, died: Promise<never>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`load run: ${what} did not finish within ${Math.round(ms / 1000)} s`)), ms)));
  try {
    return await Promise.race([p, died, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `missing` until it returns undefined (nothing missing); on timeout the error says what still was. */
async function pollUntil(what: string, ms: number, missing: () => Promise<string | undefined>, died: Promise<never>): Promise<void> {
  const deadline = Date.now() + ms;
  let last = 'not checked yet';
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      let m: string | undefined;
      try {
        m = await missing();
      } catch (err) {
        // A query the server could not answer this time (a workflow task in flight on a loaded
        // machine, a run handing over to its continue-as-new): not yet the state, so ask again.
        if (!(err instanceof ServiceError)) throw err;
        m = `the server did not answer: ${err.message}`;
      }
      if (m === undefined) return;
      last = m;
      if (Date.now() > deadline) throw new Error(`load run: ${what} not reached within ${Math.round(ms / 1000)} s: ${last}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  try {
    await Promise.race([loop, died]);
  } finally {
    stop = true;
  }
}

async function listRuns(client: Client, workflowType: string, idPrefix: string): Promise<WorkflowExecutionInfo[]> {
  const runs: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query: `WorkflowType = '${workflowType}'` })) if (info.workflowId.startsWith(idPrefix)) runs.push(info);
  return runs;
}

/** Runs per workflow id and their history lengths: closed runs from visibility, the open run from describe (exact). */
async function chainFigures(client: Client, workflowType: string, idPrefix: string): Promise<ChainFigures> {
  const runs = await listRuns(client, workflowType, idPrefix);
  const chains = new Map<string, number[]>();
  await Promise.all(
    runs.map(async (r) => {
      const length = r.status.name === 'RUNNING' ? (await client.workflow.getHandle(r.workflowId, r.runId).describe()).historyLength : r.historyLength;
      const lengths = chains.get(r.workflowId) ?? [];
      lengths.push(length);
      chains.set(r.workflowId, lengths);
    }),
  );
  const all = [...chains.values()];
  return {
    chains: chains.size,
    minRuns: all.length ? Math.min(...all.map((l) => l.length)) : 0,
    maxRuns: all.length ? Math.max(...all.map((l) => l.length)) : 0,
    maxRunHistory: all.length ? Math.max(...all.flat()) : 0,
    maxChainEvents: all.length ? Math.max(...all.map((l) => l.reduce((a, b) => a + b, 0))) : 0,
  };
}

async function runTrainings(opts: LoadOptions, died: Promise<never>): Promise<LoadFigures['trainings']> {
  const { client, tag, trainings: t } = opts;
  const started = performance.now();
  const handles = await Promise.all(
    Array.from({ length: t.runs }, (_, i) => {
      const spec: TrainingSpecInput = {
        model: `${tag}-t${i}`,
        preset: 'flights-delay',
        dataset: { flights: { from: '2001-01', to: '2001-01' } },
        sampleRows: t.sampleRows,
        seed: i,
        hyperparameters: { rounds: t.rounds },
        resources: { gpu: 0 },
      };
      return client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `${tag}-train-${i}`, args: [spec] });
    }),
  );
  opts.log.info(`load: ${handles.length} continuousTraining runs started`);
  const failed: Array<{ workflowId: string; reason: string }> = [];
  let registered = 0;
  let done = 0;
  const results = handles.map((h) =>
    h.result().then(
      (r: { status: string }) => {
        if (r.status === 'registered') registered++;
        if (++done % 10 === 0) opts.log.info(`load: ${done}/${handles.length} trainings done`);
      },
      (err: unknown) => void failed.push({ workflowId: h.workflowId, reason: err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err) }),
    ),
  );
  await within(`${t.runs} trainings`, opts.timeoutMs, Promise.all(results), died);
  const wallSeconds = (performance.now() - started) / 1000;

  const timings = await Promise.all(handles.map(async (h) => activityTimings(await h.fetchHistory())));
  // The pipeline's steps (named by their activity id); the run's bookkeeping activities are not steps.
  const steps = timings.flatMap((x) => x.steps).filter((s) => (STEPS as readonly string[]).includes(s.step));
  const perStep: Record<string, number[]> = {};
  for (const s of steps) (perStep[s.step] ??= []).push(s.latencyMs);
  const completed = t.runs - failed.length;
  return {
    runs: t.runs,
    completed,
    failed,
    registered,
    rejected: completed - registered,
    wallSeconds,
    runsPerMinute: (completed / wallSeconds) * 60,
    steps: steps.length,
    stepLatencyMs: stats(steps.map((s) => s.latencyMs)),
    queueWaitMs: stats(steps.map((s) => s.queueMs)),
    perStepP50Ms: Object.fromEntries(Object.entries(perStep).map(([k, v]) => [k, quantile(v, 0.5)])),
    perStepCount: Object.fromEntries(Object.entries(perStep).map(([k, v]) => [k, v.length])),
    activityTimeouts: timings.reduce((a, x) => a + x.timeouts, 0),
    activityFailures: timings.reduce((a, x) => a + x.failures, 0),
    retriedSteps: steps.filter((s) => s.attempt > 1).length,
    peakCpuConcurrency: peakOverlap(steps.filter((s) => s.queue === TASK_QUEUES.cpu)),
    cpuSlots: 0,
  };
}

const lifecyclePolicy = (opts: LoadOptions, round: number): LifecyclePolicyInput => ({
  cooldownSeconds: 0,
  promote: false,
  monitoring: { enabled: true, periodSeconds: opts.lifecycles.periodSeconds, checksPerRun: opts.lifecycles.checksPerRun, thresholds: { psiWarn: 0.1 + round / 10_000 } },
  training: { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 2000, resources: { gpu: 0 } },
});

async function runLifecycles(opts: LoadOptions, died: Promise<never>): Promise<LoadFigures['lifecycles']> {
  const { client, tag, lifecycles: l } = opts;
  const models = Array.from({ length: l.count }, (_, i) => `${tag}-m${i}`);
  // Each model serves a production version (a binary one with no inputs: monitoring judges only
  // the model kinds it knows), so its lifecycle keeps monitoring running.
  const signature = signatureOf([], 'binary');
  for (const model of models) {
    const m = await upsertModel(opts.db, model);
    const mv = await registerModelVersion(opts.db, { modelId: m.id, idempotencyKey: `load/${model}`, status: 'registered', metrics: {}, onnxArtifactId: null, inputSignature: signature.inputs, outputSignature: signature.outputs });
    await setAlias(opts.db, m.id, 'production', mv.id);
  }
  const started = performance.now();
  await Promise.all(
    models.map((model) =>
      client.workflow.start('modelLifecycle', {
        taskQueue: TASK_QUEUES.control,
        workflowId: lifecycleWorkflowId(model),
        args: [{ model, policy: lifecyclePolicy(opts, 0), maxHistoryEvents: l.maxHistoryEvents }],
      }),
    ),
  );
  opts.log.info(`load: ${models.length} lifecycles started`);
  await pollUntil(
    `${models.length} monitoring workflows running`,
    opts.timeoutMs,
    async () => {
      const running = new Set((await listRuns(client, 'monitoring', monitoringWorkflowId(`${tag}-m`))).map((r) => r.workflowId)).size;
      return running >= models.length ? undefined : `${running} of ${models.length} running`;
    },
    died,
  );
  let signals = 0;
  for (let round = 1; round <= l.signals; round++) {
    await within(
      `signal round ${round}`,
      opts.timeoutMs,
      Promise.all(models.map((model) => client.workflow.getHandle(lifecycleWorkflowId(model)).signal('setPolicy', lifecyclePolicy(opts, round)))),
      died,
    );
    signals += models.length;
    await new Promise((r) => setTimeout(r, l.signalIntervalMs));
  }
  // Every lifecycle has taken its last policy (its status says so) before the histories are read.
  const last = lifecyclePolicy(opts, l.signals).monitoring!.thresholds!.psiWarn;
  await pollUntil(
    'the last policy at every lifecycle and monitoring',
    opts.timeoutMs,
    async () => {
      const [lifecycles, monitors] = await Promise.all([
        Promise.all(models.map((model) => client.workflow.getHandle(lifecycleWorkflowId(model)).query(lifecycleStatusQuery) as Promise<LifecycleStatus>)),
        Promise.all(models.map((model) => client.workflow.getHandle(monitoringWorkflowId(model)).query(STATUS_QUERY) as Promise<MonitoringStatus>)),
      ]);
      // Monitoring too: it has the last thresholds and has run more checks than one run holds.
      const oldPolicy = lifecycles.filter((s) => s.policy.monitoring.thresholds.psiWarn !== last);
      const oldThresholds = monitors.filter((m) => m.thresholds.psiWarn !== last);
      const fewChecks = monitors.filter((m) => m.checks <= l.checksPerRun);
      const behind = [
        oldPolicy.length ? `${oldPolicy.length} lifecycles without the last policy` : '',
        oldThresholds.length ? `${oldThresholds.length} monitors without its thresholds (psiWarn ${oldThresholds[0]!.thresholds.psiWarn} ≠ ${last})` : '',
        fewChecks.length ? `${fewChecks.length} monitors with ≤ ${l.checksPerRun} checks (fewest ${Math.min(...fewChecks.map((m) => m.checks))})` : '',
      ].filter(Boolean);
      return behind.length ? behind.join('; ') : undefined;
    },
    died,
  );
  const wallSeconds = (performance.now() - started) / 1000;
  const [lifecycle, monitoring] = await Promise.all([chainFigures(client, 'modelLifecycle', lifecycleWorkflowId(`${tag}-m`)), chainFigures(client, 'monitoring', monitoringWorkflowId(`${tag}-m`))]);
  await Promise.all(
    models.flatMap((model) => [lifecycleWorkflowId(model), monitoringWorkflowId(model)].map((id) => client.workflow.getHandle(id).terminate('load run over').catch(() => undefined))),
  );
  return { count: models.length, signals, wallSeconds, maxHistoryEvents: l.maxHistoryEvents, lifecycle, monitoring };
}

/** Starts a control and a CPU worker process, runs the trainings, then the lifecycles, and returns what the histories say. */
export async function runLoad(opts: LoadOptions): Promise<LoadFigures> {
  const workers = [startWorker(opts, 'control'), startWorker(opts, 'cpu')];
  const watch = watchWorkers(workers);
  let peaks: WorkerFigures[] = [];
  try {
    const trainings = await runTrainings(opts, watch.died);
    const lifecycles = await runLifecycles(opts, watch.died);
    peaks = workers.map((w) => ({ queues: w.queues, pid: w.child.pid!, peakRssMiB: peakRssMiB(w.child.pid!) }));
    // The slots our CPU entry point gives itself: one per core of this machine.
    return { trainings: { ...trainings, cpuSlots: Math.max(1, os.availableParallelism()) }, lifecycles, workers: peaks };
  } finally {
    watch.stop();
    await Promise.all(workers.map(stopWorker));
  }
}

/** `npm run bench -- load`: the full load run on a dev server of its own (as `npm run dev` starts it), the local PostgreSQL and a local artifact store. */
export async function benchLoad(): Promise<ReportedRow[]> {
  const log = createLogger('bench');
  process.env.MLOPS_LOG_LEVEL ??= 'WARN';
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-bench-load-'));
  const storeEnv = { MLOPS_STATE_DIR: path.join(dir, 'state'), ARTIFACT_ROOT: path.join(dir, 'artifacts'), MLOPS_DATABASE_NAME: 'mlops_bench', MLOPS_DB_SCHEMA: 'mlops_load' };
  const config = loadConfig({ ...process.env, ...storeEnv });
  const cli = await resolveBinary(TEMPORAL_CLI, config, log);
  const server = await startTemporalDevServer({ cli: cli.path, stateDir: path.join(dir, 'temporal') });
  const runtime = await openRuntime(log, { config });
  const connection = await Connection.connect({ address: server.address });
  try {
    const figures = await runLoad({
      client: new Client({ connection, namespace: server.namespace }),
      temporal: { address: server.address, namespace: server.namespace },
      workerEnv: { ...storeEnv, DATABASE_URL: runtime.pg.url },
      db: runtime.db,
      log,
      tag: `bench-${Date.now().toString(36)}`,
      trainings: { runs: 50, sampleRows: 20_000, rounds: 20 },
      lifecycles: { count: 100, signals: 30, signalIntervalMs: 1000, maxHistoryEvents: 200, periodSeconds: 5, checksPerRun: 5 },
      timeoutMs: 30 * 60_000,
    });
    const t = figures.trainings;
    const l = figures.lifecycles;
    const f = (x: number) => x.toFixed(0);
    const rows = ([
      { measure: `${t.runs} concurrent continuousTraining runs: completed ÷ started`, ours: `${t.completed} completed, ${t.registered} registered, ${t.wallSeconds.toFixed(1)} s wall (${t.runsPerMinute.toFixed(1)} runs/min)`, baseline: `${t.runs} started`, ratio: t.completed / t.runs, target: { label: '= 1', met: (r: number) => r === 1 } },
      { measure: 'step latency, scheduled → completed (p50 / p99)', ours: `${f(t.stepLatencyMs.p50)} / ${f(t.stepLatencyMs.p99)} ms`, baseline: '' },
      { measure: 'of which queue wait (p50 / p99)', ours: `${f(t.queueWaitMs.p50)} / ${f(t.queueWaitMs.p99)} ms`, baseline: '' },
      { measure: 'activity timeouts + failures + retried steps', ours: `${t.activityTimeouts} / ${t.activityFailures} / ${t.retriedSteps}`, baseline: '', ratio: t.activityTimeouts + t.activityFailures + t.retriedSteps, target: atMost(0) },
      { measure: 'CPU steps at once, peak ÷ slots', ours: `${t.peakCpuConcurrency}`, baseline: `${t.cpuSlots} slots`, ratio: t.peakCpuConcurrency / t.cpuSlots, target: atMost(1) },
      { measure: `${l.count} lifecycles with monitoring, ${l.signals} signals`, ours: `${l.wallSeconds.toFixed(1)} s (${(l.signals / l.wallSeconds).toFixed(0)} signals/s)`, baseline: '' },
      { measure: `longest lifecycle run ÷ maxHistoryEvents (runs per chain ${l.lifecycle.minRuns}–${l.lifecycle.maxRuns})`, ours: `${l.lifecycle.maxRunHistory} events`, baseline: `${l.maxHistoryEvents} events`, ratio: l.lifecycle.maxRunHistory / l.maxHistoryEvents },
      { measure: `longest monitoring run ÷ longest chain (runs per chain ${l.monitoring.minRuns}–${l.monitoring.maxRuns})`, ours: `${l.monitoring.maxRunHistory} events`, baseline: `${l.monitoring.maxChainEvents} events`, ratio: l.monitoring.maxRunHistory / l.monitoring.maxChainEvents, target: { label: '< 1', met: (r: number) => r < 1 } },
      ...figures.workers.map((w): BenchRow => ({ measure: `peak memory, ${w.queues} worker`, ours: w.peakRssMiB === undefined ? 'n/a' : `${w.peakRssMiB.toFixed(0)} MiB`, baseline: '' })),
    ] satisfies BenchRow[]).map(reportRow);
    await writeResult('load', { machine: { cpus: os.availableParallelism(), node: process.version, date: new Date().toISOString() }, ...figures }, rows);
    return rows;
  } finally {
    await connection.close();
    await runtime.close();
    await server.process.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
