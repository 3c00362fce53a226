import { f2, pct, performanceFigures } from '../figures';
import type { MonitoringCheck } from './types';

/** Once labels arrive: AUC and log loss against the offline figures, and calibration. */
export const performanceCheck: MonitoringCheck = {
  name: 'performance',
  run(ctx) {
    const labeled = ctx.input.labeled;
    if (!labeled || ctx.labeledRows === 0) return;
    const t = ctx.thresholds;
    const p = performanceFigures(labeled.probs, labeled.labels, ctx.input.offline);
    ctx.figures.performance = p;
    if (!ctx.enoughLabels) return;
    if (p.auc !== null && p.offlineAuc !== null && p.offlineAuc - p.auc > t.maxAucDrop) ctx.act.push(`AUC ${f2(p.auc)} vs ${f2(p.offlineAuc)} offline (drop ${f2(p.offlineAuc - p.auc)} > ${t.maxAucDrop})`);
    if (p.offlineLogLoss !== null && p.logLoss - p.offlineLogLoss > t.maxLogLossIncrease) ctx.act.push(`log loss ${f2(p.logLoss)} vs ${f2(p.offlineLogLoss)} offline (rise ${f2(p.logLoss - p.offlineLogLoss)} > ${t.maxLogLossIncrease})`);
    const gap = Math.abs(p.positiveRate - p.meanPrediction);
    if (gap > t.maxCalibrationGap) ctx.act.push(`calibration: positive rate ${pct(p.positiveRate)} vs mean prediction ${pct(p.meanPrediction)} (gap ${pct(gap)} > ${pct(t.maxCalibrationGap)})`);
  },
};
