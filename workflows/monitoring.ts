import { allHandlersFinished, condition, continueAsNew, defineQuery, log, setHandler, setWorkflowOptions, workflowInfo } from '@temporalio/workflow';
import { STATUS_QUERY } from './contracts/names';
import { lazyActivities, taskQueues } from './contracts/task-queues';
import { issueLines, parseInput } from './input';
import {
  latestReportQuery,
  monitoringInput,
  monitoringThresholds,
  pauseSignal,
  resumeMonitoringSignal,
  setThresholdsSignal,
  type MonitoringCheckInput,
  type MonitoringInput,
  type MonitoringReport,
  type MonitoringThresholds,
} from './contracts/lifecycle';
import { signalOrStartLifecycle } from './lifecycle-signal';
import { versioning } from './contracts/versioning';

/**
 * monitoring: one per deployed model (`monitoring/<name>`). Every period it checks the
 * prediction log since the last verdict against the production version's training baseline
 * (drift, data quality) and the labels that arrived since (decay), writes a report, and on a
 * breach signals `retrain` to the model's lifecycle. The window is chosen here, from workflow
 * time, so a retried check writes the same report. Continues as new every `checksPerRun` checks.
 */

export interface MonitoringActivities {
  monitoringCheck(input: MonitoringCheckInput): Promise<MonitoringReport>;
}

export interface MonitoringStatus {
  model: string;
  paused: boolean;
  pauseReason?: string;
  periodSeconds: number;
  thresholds: MonitoringThresholds;
  windowStart: string;
  labelsSince: string;
  nextCheckAt?: string;
  checks: number;
  breaches: number;
  signalled: string[];
  latest: MonitoringReport | null;
  notes: string[];
}

export const monitoringStatusQuery = defineQuery<MonitoringStatus>(STATUS_QUERY);

const acts = lazyActivities<MonitoringActivities>(() => ({
  taskQueue: taskQueues().cpu,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 5, initialInterval: '2s', nonRetryableErrorTypes: ['NotFound', 'InvalidInput'] },
}));

/** The figures a retrain trigger carries: the worst few, not the whole report. */
function triggerFigures(r: MonitoringReport, t: MonitoringThresholds): Record<string, unknown> {
  // Drift on a window too thin to judge is noise: it does not travel as a figure.
  const judged = r.rows >= t.minRows;
  const psis = judged ? Object.entries(r.features).flatMap(([name, f]) => (f.psi === null ? [] : [[name, Math.round(f.psi * 1e4) / 1e4] as const])) : [];
  psis.sort((a, b) => b[1] - a[1]);
  return {
    version: r.version,
    reportId: r.reportId,
    windowEnd: r.windowEnd,
    rows: r.rows,
    maxPsi: psis[0]?.[1] ?? null,
    maxPsiFeature: psis[0]?.[0] ?? null,
    predictionPsi: judged && r.prediction && r.prediction.psi !== null ? Math.round(r.prediction.psi * 1e4) / 1e4 : null,
    // A regression's decay travels as its RMSE, a multiclass model's as its accuracy; a binary trigger keeps the fields it always had.
    ...(r.performance?.task === 'regression'
      ? { rmse: r.performance.rmse, offlineRmse: r.performance.offlineRmse }
      : r.performance?.task === 'multiclass'
        ? { accuracy: r.performance.accuracy, offlineAccuracy: r.performance.offlineAccuracy, macroF1: r.performance.macroF1 }
        : { auc: r.performance?.auc ?? null, offlineAuc: r.performance?.offlineAuc ?? null, logLoss: r.performance?.logLoss ?? null }),
  };
}

// Worker Versioning: runs for months: it moves to the current build at its next task, so its changes are guarded with patched().
setWorkflowOptions(versioning('AUTO_UPGRADE'), monitoring);

export async function monitoring(raw: MonitoringInput): Promise<never> {
  const input = parseInput(monitoringInput, raw, 'monitoring');
  const model = input.model;
  const started = new Date(Date.now()).toISOString();
  const st = input.state ?? { paused: false, checks: 0, breaches: 0, signalled: [] };
  const status: MonitoringStatus = {
    model,
    paused: st.paused,
    periodSeconds: input.periodSeconds,
    thresholds: input.thresholds,
    windowStart: st.windowStart ?? started,
    labelsSince: st.labelsSince ?? started,
    checks: st.checks,
    breaches: st.breaches,
    signalled: st.signalled,
    latest: (st.latest as MonitoringReport | undefined) ?? null,
    notes: [],
  };
  let checksThisRun = 0;
  let wake = 0;
  const note = (n: string) => {
    status.notes.push(n);
    if (status.notes.length > 20) status.notes.shift();
  };

  setHandler(monitoringStatusQuery, () => status);
  setHandler(latestReportQuery, () => status.latest);
  setHandler(pauseSignal, (r) => {
    status.paused = true;
    status.pauseReason = r?.reason ?? 'paused by signal';
    note(`paused: ${status.pauseReason}`);
    wake++;
  });
  setHandler(resumeMonitoringSignal, () => {
    status.paused = false;
    status.pauseReason = undefined;
    note('resumed');
    wake++;
  });
  setHandler(setThresholdsSignal, (t) => {
    const parsed = monitoringThresholds.safeParse(t ?? {});
    if (!parsed.success) {
      note(`setThresholds ignored: ${issueLines(parsed.error).join('; ')}`);
      return;
    }
    status.thresholds = parsed.data;
    note('thresholds updated');
  });

  for (;;) {
    status.nextCheckAt = new Date(Date.now() + input.periodSeconds * 1000).toISOString();
    const seen = wake;
    // Pause and resume wake the loop; only an undisturbed period ends in a check.
    const woken = await condition(() => wake !== seen, input.periodSeconds * 1000);
    if (woken || status.paused) {
      if (status.paused) {
        status.nextCheckAt = undefined;
        await condition(() => !status.paused);
      }
      continue;
    }
    const windowEnd = new Date(Date.now()).toISOString();
    let report: MonitoringReport;
    try {
      report = await acts.monitoringCheck({ model, windowStart: status.windowStart, windowEnd, labelsSince: status.labelsSince, thresholds: status.thresholds });
    } catch (err) {
      // One failed check must not end monitoring; the window stays open for the next one.
      note(`check at ${windowEnd} failed: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    status.checks++;
    checksThisRun++;
    status.latest = report;
    // Each window moves on only once it was judged: traffic too thin for a drift verdict keeps
    // growing even when the labels that arrived were enough for a performance verdict, and back.
    if (report.rows >= status.thresholds.minRows) status.windowStart = windowEnd;
    if (report.labeledRows >= status.thresholds.minLabeledRows) status.labelsSince = windowEnd;
    if (report.breach) {
      status.breaches++;
      // One retrain per production version and breach kind within the lifecycle's dedupe window.
      const dedupeKey = `monitoring:${model}:v${report.version}`;
      try {
        const how = await signalOrStartLifecycle(model, {
          retrain: { reason: `monitoring v${report.version}: ${report.reasons.slice(0, 3).join('; ')}`.slice(0, 500), source: 'monitoring', dedupeKey, figures: triggerFigures(report, status.thresholds) },
        });
        status.signalled.push(`${windowEnd} ${dedupeKey} (${how})`);
        if (status.signalled.length > 20) status.signalled.shift();
        log.info(`monitoring ${model}: breach on v${report.version} (${report.reasons.join('; ')}); retrain ${how}`);
      } catch (err) {
        note(`retrain signal failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const info = workflowInfo();
    if (checksThisRun >= input.checksPerRun || info.continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof monitoring>({
        model,
        periodSeconds: input.periodSeconds,
        checksPerRun: input.checksPerRun,
        thresholds: status.thresholds,
        state: {
          windowStart: status.windowStart,
          labelsSince: status.labelsSince,
          paused: status.paused,
          checks: status.checks,
          breaches: status.breaches,
          latest: status.latest ?? undefined,
          signalled: status.signalled,
        },
      });
    }
  }
}
