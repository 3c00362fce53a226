import { f2, predictionFigures } from '../figures';
import type { MonitoringCheck } from './types';

/** The served probabilities against the model's scores on its test split. */
export const predictionDrift: MonitoringCheck = {
  name: 'prediction-drift',
  run(ctx) {
    if (!ctx.input.prediction) return;
    const t = ctx.thresholds;
    const prediction = predictionFigures(ctx.input.prediction.baseline, ctx.input.prediction.window);
    ctx.figures.prediction = prediction;
    if (prediction && ctx.enoughRows) {
      for (const [figure, why] of Object.entries(prediction.notComputed ?? {})) ctx.warn.push(`prediction ${figure} not computed: ${why}`);
      if (prediction.psi !== null && prediction.psi >= t.predictionPsiAct) ctx.act.push(`prediction PSI ${f2(prediction.psi)} ≥ ${t.predictionPsiAct}`);
      else if (prediction.psi !== null && prediction.psi >= t.psiWarn) ctx.warn.push(`prediction PSI ${f2(prediction.psi)} ≥ ${t.psiWarn}`);
    }
  },
};
