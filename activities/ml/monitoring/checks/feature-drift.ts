import { categoricalFigures, f2, numericFigures, pct } from '../figures';
import type { MonitoringCheck } from './types';

/** Per feature: PSI, Jensen–Shannon and KS against the training baseline, missing values and unseen categories. */
export const featureDrift: MonitoringCheck = {
  name: 'feature-drift',
  run(ctx) {
    const t = ctx.thresholds;
    for (const [name, b] of Object.entries(ctx.input.baseline)) {
      const w = ctx.input.window.features[name];
      if (!w) continue;
      const fig = b.kind === 'numeric' && w.kind === 'numeric' ? numericFigures(b, w.values) : b.kind === 'categorical' && w.kind === 'categorical' ? categoricalFigures(b, w) : undefined;
      if (!fig) continue;
      ctx.figures.features[name] = fig;
      if (!ctx.enoughRows) continue;
      // A figure that could not be computed is no evidence of "no drift": the window is not ok.
      for (const [figure, why] of Object.entries(fig.notComputed ?? {})) ctx.warn.push(`${name} ${figure} not computed: ${why}`);
      if (fig.psi !== null && fig.psi >= t.psiAct) ctx.act.push(`${name} PSI ${f2(fig.psi)} ≥ ${t.psiAct}`);
      else if (fig.psi !== null && fig.psi >= t.psiWarn) ctx.warn.push(`${name} PSI ${f2(fig.psi)} ≥ ${t.psiWarn}`);
      if (fig.js !== null && fig.js >= t.jsAct) ctx.act.push(`${name} JS distance ${f2(fig.js)} ≥ ${t.jsAct}`);
      if (fig.ks !== undefined && fig.ks >= t.ksAct) ctx.act.push(`${name} KS ${f2(fig.ks)} ≥ ${t.ksAct}`);
      const rise = fig.missingFraction - fig.baselineMissingFraction;
      if (rise > t.maxMissingIncrease) ctx.act.push(`${name} missing ${pct(fig.missingFraction)} vs ${pct(fig.baselineMissingFraction)} in training (+${pct(rise)} > ${pct(t.maxMissingIncrease)})`);
      if (fig.unseenFraction !== undefined && fig.unseenFraction > t.maxUnseenFraction) ctx.act.push(`${name} unseen categories ${pct(fig.unseenFraction)} > ${pct(t.maxUnseenFraction)}`);
    }
  },
};
