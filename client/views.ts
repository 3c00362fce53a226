import type { TrainingResult } from '../workflows/continuous-training';
import type { LifecycleStatus, MonitoringReport } from '../workflows/contracts/lifecycle';
import type { PipelineStatus, StepState } from '../workflows/pipeline';
import type { PromotionStatus } from '../workflows/promotion';
import { fixHint } from '../workflows/contracts/step-fix';
import { fixed, isoSeconds, table } from './output';

/** Human renderings of our workflows' `status` answers and results. Pure: unit-testable. */

const MARK: Record<string, string> = { succeeded: '✓', cached: '✓', failed: '✗', skipped: '-', running: '▸', pending: ' ' };

function ms(n: number | undefined): string | undefined {
  if (n === undefined) return undefined;
  return n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`;
}

export function stepsTable(steps: StepState[]): string {
  return table(
    ['', 'step', 'state', 'queue', 'attempts', 'duration', 'worker', 'notes'],
    steps.map((s) => [MARK[s.state] ?? '?', s.name, s.cachedFrom ? `cached (${s.cachedFrom})` : s.state, s.queue, s.attempts || undefined, ms(s.durationMs), s.worker, [...s.notes, s.error ? `error: ${s.error}` : ''].filter(Boolean).join('; ')]),
  );
}

export function pipelineView(st: PipelineStatus & { notes?: string[] }): string {
  const lines = [`${st.pipeline} ${st.workflowId}: ${st.state}${st.currentStep ? ` (step ${st.currentStep})` : ''}${st.resumes ? `, resumed ${st.resumes}×` : ''}${st.resumeFrom ? `, resumeFrom ${st.resumeFrom}` : ''}`, '', stepsTable(st.steps)];
  if (st.failure) {
    lines.push('', `failure at ${st.failure.step}: ${st.failure.message}${st.failure.type ? ` (${st.failure.type})` : ''}`);
    if (st.state === 'awaiting-resume') lines.push(fixHint(st.workflowId, st.failure.details));
  }
  for (const n of st.notes ?? []) lines.push(`note: ${n}`);
  if (st.result && typeof st.result === 'object' && 'version' in st.result) lines.push('', trainingResultView(st.result as TrainingResult));
  return lines.join('\n');
}

/** The one-line status while `train` waits: step k/n, its state, attempt and round. */
export function trainingProgressLine(st: PipelineStatus, activity?: { attempt: number; details?: unknown }): string {
  const done = st.steps.filter((s) => s.state === 'succeeded' || s.state === 'cached' || s.state === 'skipped').length;
  const current = st.steps.find((s) => s.name === st.currentStep) ?? st.steps.find((s) => s.state === 'running');
  if (!current) return `${st.workflowId}: ${st.state} [${done}/${st.steps.length}]`;
  const extra: string[] = [];
  if (current.queue) extra.push(current.queue);
  if (activity && activity.attempt > 1) extra.push(`attempt ${activity.attempt}`);
  const d = activity?.details as { round?: number; rounds?: number; stage?: string } | undefined;
  if (d && typeof d.round === 'number' && typeof d.rounds === 'number' && d.rounds > 0) extra.push(`round ${d.round}/${d.rounds}`);
  else if (d && typeof d.stage === 'string') extra.push(d.stage);
  return `${st.workflowId}: [${done + 1}/${st.steps.length}] ${current.name} ${st.state === 'running' ? current.state : st.state}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

export function stepDoneLine(s: StepState): string {
  return `  ${MARK[s.state] ?? '?'} ${s.name.padEnd(15)} ${s.cachedFrom ? `cached from ${s.cachedFrom}` : s.state}${s.durationMs !== undefined ? `  ${ms(s.durationMs)}` : ''}${s.state === 'failed' && s.error ? `  ${s.error}` : ''}`;
}

export function trainingResultView(r: TrainingResult): string {
  const parity = r.parityMaxAbsDiff !== undefined ? `  ONNX parity ${r.parityMaxAbsDiff.toExponential(1)}` : '';
  const figures =
    r.task === 'multiclass'
      ? [
          `  macro-F1 ${fixed(r.metrics.macroF1)}  log loss ${fixed(r.metrics.logLoss)}  accuracy ${fixed(r.metrics.accuracy)}  recall ${r.classes.map((c, i) => `${c} ${r.metrics.recall[i] === null ? '-' : fixed(r.metrics.recall[i]!)}`).join(', ')}`,
          `  baseline (logreg) macro-F1 ${fixed(r.baseline.macroF1)} log loss ${fixed(r.baseline.logLoss)}${r.champion ? `  champion v${r.champion.version} macro-F1 ${fixed(r.champion.macroF1)}` : ''}${parity}`,
        ]
      : r.task === 'regression'
      ? [
          `  RMSE ${fixed(r.metrics.rmse)}  MAE ${fixed(r.metrics.mae)}  R² ${fixed(r.metrics.r2)}`,
          `  baseline (ridge) RMSE ${fixed(r.baselineRmse)}${r.champion ? `  champion v${r.champion.version} RMSE ${fixed(r.champion.rmse)}` : ''}${parity}`,
        ]
      : [
          `  AUC ${fixed(r.metrics.auc)}  log loss ${fixed(r.metrics.logLoss)}  accuracy ${fixed(r.metrics.accuracy)}  precision ${fixed(r.metrics.precision)}  recall ${fixed(r.metrics.recall)}  ECE ${fixed(r.metrics.expectedCalibrationError)}`,
          `  baseline (logreg) AUC ${fixed(r.baselineAuc)}${r.champion ? `  champion v${r.champion.version} AUC ${fixed(r.champion.auc)}` : ''}${parity}`,
        ];
  const lines = [
    `${r.model} v${r.version}: ${r.status}${r.alias ? ` (alias ${r.alias})` : ''}`,
    ...figures,
    `  model ${r.modelUri}`,
  ];
  if (r.reasons.length) lines.push(`  reasons: ${r.reasons.join('; ')}`);
  if (r.dataWarnings.length) lines.push(`  data warnings: ${r.dataWarnings.join('; ')}`);
  if (r.resumedFromRound) lines.push(`  resumed training from round ${r.resumedFromRound}`);
  return lines.join('\n');
}

export function promotionView(workflowId: string, st: PromotionStatus): string {
  const lines = [`promotion ${workflowId}: ${st.model} v${st.candidate} (production was ${st.previous === null ? 'none' : `v${st.previous}`})`, `  stage    ${st.stage}${st.outcome ? `  outcome ${st.outcome}` : ''}`];
  if (st.traffic) lines.push(`  traffic  ${JSON.stringify(st.traffic)}`);
  if (st.reason) lines.push(`  reason   ${st.reason}`);
  const figures = Object.entries(st.figures ?? {});
  if (figures.length) {
    lines.push('  figures');
    for (const [k, v] of figures) lines.push(`    ${k.padEnd(22)} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(4)) : JSON.stringify(v)}`);
  }
  if (st.stage === 'awaiting-approval') lines.push(`approve: mlops approve --model ${st.model}    reject: mlops reject --model ${st.model} --reason '…'`);
  return lines.join('\n');
}

export function lifecycleView(st: LifecycleStatus): string {
  const p = st.policy;
  const lines = [
    `model ${st.model}: ${st.phase}   production ${st.production === null ? 'none' : `v${st.production}`}   (generation ${st.generation})`,
    `  running   ${st.running ? `${st.running.kind} ${st.running.workflowId} since ${isoSeconds(st.running.startedAt)} (${st.running.triggers.length} trigger${st.running.triggers.length === 1 ? '' : 's'})` : 'nothing'}`,
    `  pending   ${st.pending.length ? st.pending.map((t) => `${t.source}: ${t.reason}`).join('; ') : 'none'}${st.nextEligibleAt ? `  (next eligible ${isoSeconds(st.nextEligibleAt)})` : ''}`,
    `  budget    ${st.trainingsToday.count}/${p.dailyBudget} trainings on ${st.trainingsToday.day}; cooldown ${p.cooldownSeconds}s${st.lastTrainingEndedAt ? `, last training ended ${isoSeconds(st.lastTrainingEndedAt)}` : ''}`,
    `  counters  ${Object.entries(st.counters).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ];
  if (st.dataUris.length) lines.push(`  data      ${st.dataUris.join(', ')}`);
  const recent = st.decisions.slice(-10);
  if (recent.length) {
    lines.push('', 'last decisions:');
    lines.push(table(['at', 'kind', 'source', 'workflow', 'detail'], recent.map((d) => [isoSeconds(d.at), d.kind, d.source, d.workflowId ?? (d.version !== undefined ? `v${d.version}` : undefined), d.detail])));
  }
  return lines.join('\n');
}

export function monitoringView(r: MonitoringReport | null | undefined, paused?: boolean): string {
  if (!r) return `monitoring: running${paused ? ' (paused)' : ''}, no report yet`;
  const lines = [`monitoring: v${r.version} window ${isoSeconds(r.windowStart)} → ${isoSeconds(r.windowEnd)}: ${r.level}${r.breach ? ' (BREACH)' : ''}, ${r.rows} rows, ${r.labeledRows} labelled`];
  if (r.reasons.length) lines.push(`  reasons: ${r.reasons.join('; ')}`);
  const drifted = Object.entries(r.features)
    .flatMap(([k, f]) => (f.psi === null ? [] : [[k, f.psi] as const]))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  if (drifted.length) lines.push(`  top PSI: ${drifted.map(([k, psi]) => `${k} ${psi.toFixed(3)}`).join(', ')}`);
  const p = r.performance;
  if (p?.task === 'regression') lines.push(`  live RMSE ${fixed(p.rmse) ?? '-'} (offline ${fixed(p.offlineRmse) ?? '-'}), MAE ${fixed(p.mae) ?? '-'}, R² ${fixed(p.r2) ?? '-'}, mean label ${fixed(p.meanLabel) ?? '-'} vs prediction ${fixed(p.meanPrediction) ?? '-'}`);
  else if (p?.task === 'multiclass')
    lines.push(`  live accuracy ${fixed(p.accuracy) ?? '-'} (offline ${fixed(p.offlineAccuracy) ?? '-'}), macro-F1 ${fixed(p.macroF1) ?? '-'} (offline ${fixed(p.offlineMacroF1) ?? '-'}), log loss ${fixed(p.logLoss) ?? '-'} (offline ${fixed(p.offlineLogLoss) ?? '-'})${p.skippedRows ? `, ${p.skippedRows} labelled rows skipped` : ''}`);
  else if (p) lines.push(`  live AUC ${fixed(p.auc) ?? '-'} (offline ${fixed(p.offlineAuc) ?? '-'}), log loss ${fixed(p.logLoss)}`);
  return lines.join('\n');
}
