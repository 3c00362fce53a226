import type { ClassPredictionFigures, ScorePredictionFigures } from '../../../../workflows/contracts/lifecycle';
import { classPredictionFigures, f2, predictionFigures } from '../figures';
import type { CheckContext, MonitoringCheck } from './types';

/** The served predictions against the model's own on its test split: scores, or a multiclass model's predicted classes. */
export const predictionDrift: MonitoringCheck = {
  name: 'prediction-drift',
  run(ctx) {
    const prediction = ctx.input.task === 'multiclass' ? classShares(ctx) : scores(ctx);
    ctx.figures.prediction = prediction;
    if (prediction && ctx.enoughRows) judge(ctx, prediction);
  },
};

function scores(ctx: CheckContext): ScorePredictionFigures | undefined {
  return ctx.input.prediction ? predictionFigures(ctx.input.prediction.baseline, ctx.input.prediction.window) : undefined;
}

function classShares(ctx: CheckContext): ClassPredictionFigures | undefined {
  const mc = ctx.input.multiclass;
  return mc ? classPredictionFigures(mc.offlineHistogram, mc.served, mc.classes) : undefined;
}

/** The same thresholds for every task: a class share is a bin as a score decile is. */
function judge(ctx: CheckContext, prediction: ScorePredictionFigures | ClassPredictionFigures): void {
  const t = ctx.thresholds;
  for (const [figure, why] of Object.entries(prediction.notComputed ?? {})) ctx.warn.push(`prediction ${figure} not computed: ${why}`);
  if (prediction.psi !== null && prediction.psi >= t.predictionPsiAct) ctx.act.push(`prediction PSI ${f2(prediction.psi)} ≥ ${t.predictionPsiAct}`);
  else if (prediction.psi !== null && prediction.psi >= t.psiWarn) ctx.warn.push(`prediction PSI ${f2(prediction.psi)} ≥ ${t.psiWarn}`);
}
