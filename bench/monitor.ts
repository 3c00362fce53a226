import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { quantile } from '../activities/ml/metrics';
import { TEMPORAL_CLI, resolveBinary } from '../infra/binaries';
import { loadConfig } from '../infra/config';
import { createLogger } from '../infra/log';
import { atMost, reportRow, writeResult, type ReportedRow } from './report';
import { startTemporalDevServer } from '../infra/services';
import { installSdkRuntime } from '../workers/start';
import { TASK_QUEUES, lifecycleWorkflowId, monitoringWorkflowId } from '../workflows/contracts/names';
import type { MonitoringCheckInput, MonitoringReport } from '../workflows/contracts/lifecycle';
import { benchDrift } from './monitor-drift';

/**
 * `npm run bench -- monitor`: (1) how long from a monitoring breach to the retraining child
 * workflow started — the real monitoring and lifecycle workflows on a Temporal dev server, the
 * check activity answering "breach" at once and the training a stand-in that ends at once, so
 * only the loop's own latency is measured, from the event times in the histories; (2) the drift
 * check of 500k vs 500k rows on 5 features ÷ one DuckDB scan of the same data.
 */

const SAMPLES = Number(process.env.MLOPS_BENCH_MONITOR_SAMPLES ?? 50);

const eventMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

async function breachToTraining(log: ReturnType<typeof createLogger>, stateDir: string) {
  const config = loadConfig({ ...process.env, MLOPS_STATE_DIR: stateDir });
  const cli = await resolveBinary(TEMPORAL_CLI, config, log);
  const server = await startTemporalDevServer({ cli: cli.path, stateDir: path.join(stateDir, 'temporal') });
  installSdkRuntime();
  const connection = await NativeConnection.connect({ address: server.address });
  const clientConnection = await Connection.connect({ address: server.address });
  const client = new Client({ connection: clientConnection });
  let version = 0;
  const activities = {
    currentProduction: async () => 1,
    monitoringCheck: async (input: MonitoringCheckInput): Promise<MonitoringReport> => {
      version++;
      return {
        reportId: `bench-${version}`,
        model: input.model,
        // A new version each time: one breach per version is a new trigger, not a duplicate.
        version,
        windowStart: input.windowStart,
        windowEnd: input.windowEnd,
        rows: 1000,
        labeledRows: 0,
        level: 'act',
        breach: true,
        reasons: ['distance PSI 0.5 ≥ 0.2'],
        features: { distance: { kind: 'numeric', psi: 0.5, js: 0.3, ks: 0.3, ksPValue: 0, missingFraction: 0, baselineMissingFraction: 0 } },
        quality: { missingInputs: [], unexpectedInputs: [], schemaChanged: false },
      };
    },
  };
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../test/helpers/fake-workflows'), logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as never });
  const workers = await Promise.all(
    [TASK_QUEUES.control, TASK_QUEUES.cpu].map((taskQueue) => Worker.create({ connection, taskQueue, activities, ...(taskQueue === TASK_QUEUES.control ? { workflowBundle } : {}) })),
  );
  const running = Promise.all(workers.map((w) => w.run()));
  const model = 'bench-loop';
  try {
    await client.workflow.start('modelLifecycle', {
      taskQueue: TASK_QUEUES.control,
      workflowId: lifecycleWorkflowId(model),
      args: [
        {
          model,
          policy: {
            cooldownSeconds: 0,
            dailyBudget: 1000,
            promote: false,
            monitoring: { enabled: false },
            // rounds: 1 makes the stand-in training end at once (test/helpers/fake-workflows.ts).
            training: { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, hyperparameters: { rounds: 1 }, resources: { gpu: 0 } },
          },
        },
      ],
    });
    const mon = await client.workflow.start('monitoring', { taskQueue: TASK_QUEUES.control, workflowId: monitoringWorkflowId(model), args: [{ model, periodSeconds: 1, checksPerRun: 10_000 }] });
    process.stderr.write(`breach → training: ${SAMPLES} breaches, one a second…\n`);
    for (;;) {
      const d = await client.workflow.getHandle(lifecycleWorkflowId(model)).query<{ counters: { trainings: number }; running?: unknown }>('status');
      if (d.counters.trainings >= SAMPLES && !d.running) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    await mon.terminate();
    const breaches: number[] = [];
    const roundTrips: number[] = [];
    const scheduled = new Map<string, number>();
    for (const e of (await mon.fetchHistory()).events ?? []) {
      if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), eventMs(e.eventTime));
      const done = e.activityTaskCompletedEventAttributes;
      if (done) {
        breaches.push(eventMs(e.eventTime));
        roundTrips.push(eventMs(e.eventTime) - scheduled.get(String(done.scheduledEventId))!);
      }
    }
    const starts: number[] = [];
    for (const e of (await client.workflow.getHandle(lifecycleWorkflowId(model)).fetchHistory()).events ?? []) {
      if (e.childWorkflowExecutionStartedEventAttributes?.workflowType?.name === 'continuousTraining') starts.push(eventMs(e.eventTime));
    }
    const n = Math.min(SAMPLES, starts.length, breaches.length);
    const latencies = Array.from({ length: n }, (_, i) => starts[i]! - breaches[i]!);
    await client.workflow.getHandle(lifecycleWorkflowId(model)).terminate();
    return {
      samples: n,
      breachToTrainingMedianMs: quantile(latencies, 0.5),
      breachToTrainingP99Ms: quantile(latencies, 0.99),
      breachToTrainingMaxMs: Math.max(...latencies),
      activityRoundTripMedianMs: quantile(roundTrips.slice(0, n), 0.5),
    };
  } finally {
    for (const w of workers) w.shutdown();
    await running;
    await clientConnection.close();
    await connection.close();
    await server.process.stop();
  }
}

export async function benchMonitor(): Promise<ReportedRow[]> {
  const log = createLogger('bench');
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-bench-monitor-'));
  try {
    const loop = await breachToTraining(log, stateDir);
    process.stderr.write('drift check: 500k vs 500k rows, 5 features…\n');
    const drift = await benchDrift();
    const result = {
      machine: `${os.cpus().length} cores, Node ${process.version}`,
      breachToTrainingMedianMs: round(loop.breachToTrainingMedianMs),
      breachToTrainingP99Ms: round(loop.breachToTrainingP99Ms),
      breachToTrainingMaxMs: round(loop.breachToTrainingMaxMs),
      breachSamples: loop.samples,
      activityRoundTripMedianMs: round(loop.activityRoundTripMedianMs),
      breachToTrainingPerActivityRoundTrip: round(loop.breachToTrainingMedianMs / loop.activityRoundTripMedianMs),
      driftRows: drift.rows,
      driftFeatures: drift.features,
      driftMs: round(drift.driftMs),
      duckdbScanMs: round(drift.duckdbMs),
      driftRatio: round(drift.driftRatio),
    };
    const rows = [
      { measure: `monitoring breach → child training started, median of ${result.breachSamples} (ms)`, ours: `${result.breachToTrainingMedianMs} ms`, baseline: `${result.activityRoundTripMedianMs} ms activity round trip`, ratio: result.breachToTrainingMedianMs, target: atMost(250) },
      { measure: 'monitoring breach → child training started, p99', ours: `${result.breachToTrainingP99Ms} ms`, baseline: `${result.activityRoundTripMedianMs} ms activity round trip`, ratio: result.breachToTrainingP99Ms / result.activityRoundTripMedianMs },
      { measure: `drift check ${drift.rows / 1000}k vs ${drift.rows / 1000}k rows, ${drift.features} features ÷ one DuckDB scan`, ours: `${result.driftMs} ms`, baseline: `${result.duckdbScanMs} ms`, ratio: result.driftRatio },
    ].map(reportRow);
    await writeResult('monitor', result, rows);
    return rows;
  } finally {
    await fs.rm(stateDir, { recursive: true, force: true });
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
