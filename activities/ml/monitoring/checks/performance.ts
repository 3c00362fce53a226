import { f2, multiclassPerformanceFigures, pct, performanceFigures, regressionPerformanceFigures } from '../figures';
import type { CheckContext, MonitoringCheck } from './types';

/**
 * Once labels arrive, against the version's offline figures: a binary model's AUC, log loss and
 * calibration; a regression's RMSE and bias; a multiclass model's accuracy.
 */
export const performanceCheck: MonitoringCheck = {
  name: 'performance',
  run(ctx) {
    if (ctx.input.task === 'multiclass') return multiclass(ctx);
    const labeled = ctx.input.labeled;
    if (!labeled || ctx.labeledRows === 0) return;
    if (ctx.input.task === 'regression') return regression(ctx, labeled);
    const t = ctx.thresholds;
    const p = performanceFigures(labeled.scores, labeled.labels, ctx.input.offline);
    ctx.figures.performance = p;
    if (!ctx.enoughLabels) return;
    if (p.auc !== null && p.offlineAuc !== null && p.offlineAuc - p.auc > t.maxAucDrop) ctx.act.push(`AUC ${f2(p.auc)} vs ${f2(p.offlineAuc)} offline (drop ${f2(p.offlineAuc - p.auc)} > ${t.maxAucDrop})`);
    if (p.offlineLogLoss !== null && p.logLoss - p.offlineLogLoss > t.maxLogLossIncrease) ctx.act.push(`log loss ${f2(p.logLoss)} vs ${f2(p.offlineLogLoss)} offline (rise ${f2(p.logLoss - p.offlineLogLoss)} > ${t.maxLogLossIncrease})`);
    const gap = Math.abs(p.positiveRate - p.meanPrediction);
    if (gap > t.maxCalibrationGap) ctx.act.push(`calibration: positive rate ${pct(p.positiveRate)} vs mean prediction ${pct(p.meanPrediction)} (gap ${pct(gap)} > ${pct(t.maxCalibrationGap)})`);
  },
};

/** A regression's figures are in the target's units, any size: five significant digits, not f2's two decimals. */
const g5 = (x: number) => String(Number(x.toPrecision(5)));

function regression(ctx: CheckContext, labeled: NonNullable<CheckContext['input']['labeled']>): void {
  const t = ctx.thresholds;
  const p = regressionPerformanceFigures(labeled.scores, labeled.labels, ctx.input.offline);
  ctx.figures.performance = p;
  if (!ctx.enoughLabels) return;
  // Both judgements are relative to the offline RMSE: without it (or with a perfect fit) there is no scale, and no verdict is no "ok".
  if (p.offlineRmse === null || !(p.offlineRmse > 0)) {
    ctx.warn.push(`no offline RMSE for this version (${p.offlineRmse ?? 'absent'}): RMSE ${g5(p.rmse)} on ${ctx.labeledRows} labelled rows not judged`);
    return;
  }
  if (!Number.isFinite(p.rmse)) {
    ctx.act.push(`RMSE on labelled rows is not finite (${p.rmse}): the served predictions or labels are not numbers`);
    return;
  }
  const rise = (p.rmse - p.offlineRmse) / p.offlineRmse;
  if (rise > t.maxRmseIncrease) ctx.act.push(`RMSE ${g5(p.rmse)} vs ${g5(p.offlineRmse)} offline (+${pct(rise)} > ${pct(t.maxRmseIncrease)})`);
  const bias = Math.abs(p.meanLabel - p.meanPrediction) / p.offlineRmse;
  if (bias > t.maxBiasRatio) ctx.act.push(`bias: mean label ${g5(p.meanLabel)} vs mean prediction ${g5(p.meanPrediction)} (${f2(bias)} × offline RMSE > ${t.maxBiasRatio})`);
}

/**
 * A multiclass model is judged on accuracy, what its served label gets right; macro-F1 and log
 * loss are reported beside it. Macro-F1 on a few hundred rows swings with the rare classes (one
 * row of a rare class moves it by a few points), so it would act on noise.
 */
function multiclass(ctx: CheckContext): void {
  const mc = ctx.input.multiclass;
  if (!mc || ctx.labeledRows === 0) return;
  const t = ctx.thresholds;
  const p = multiclassPerformanceFigures(mc.labeled, mc.classes.length, ctx.input.offline);
  ctx.figures.performance = p;
  if (!ctx.enoughLabels) return;
  // The rule is relative to the offline accuracy: without it, no verdict, and no verdict is no "ok".
  if (p.offlineAccuracy === null) {
    ctx.warn.push(`no offline accuracy for this version: accuracy ${f2(p.accuracy)} on ${ctx.labeledRows} labelled rows not judged`);
    return;
  }
  const drop = p.offlineAccuracy - p.accuracy;
  if (drop > t.maxAccuracyDrop) ctx.act.push(`accuracy ${f2(p.accuracy)} vs ${f2(p.offlineAccuracy)} offline (drop ${f2(drop)} > ${t.maxAccuracyDrop})`);
}
