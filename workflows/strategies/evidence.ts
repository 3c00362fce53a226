import type { CanaryFigures } from '../../activities/deployment';
import type { RolloutContext } from './types';

/**
 * A stage's figures once they are enough to judge: the bake, then more of it (in bake-sized
 * steps, up to `maxBakeSeconds` in all) while the candidate has fewer than `minCanaryRows`.
 */
export async function bakeForEvidence(ctx: RolloutContext, role: 'canary' | 'shadow', since: string): Promise<{ figures: CanaryFigures; waitedSeconds: number }> {
  const { input } = ctx;
  const step = Math.max(1, input.bakeSeconds);
  await ctx.sleep(input.bakeSeconds * 1000);
  let waitedSeconds = input.bakeSeconds;
  let figures = await ctx.acts.canaryFigures({ model: input.model, stable: ctx.production, canary: ctx.candidate, since, role });
  while (figures.canaryRows < input.gates.minCanaryRows && waitedSeconds + step <= input.maxBakeSeconds) {
    await ctx.sleep(step * 1000);
    waitedSeconds += step;
    figures = await ctx.acts.canaryFigures({ model: input.model, stable: ctx.production, canary: ctx.candidate, since, role });
  }
  return { figures, waitedSeconds };
}

/** Why the figures fail the stage, or undefined when they pass: every missing figure fails by name. */
export function evidenceProblem(ctx: RolloutContext, f: CanaryFigures, waitedSeconds: number, judge: { errors: boolean; latency: boolean; performance?: boolean }): string | undefined {
  const g = ctx.input.gates;
  if (f.canaryRows < g.minCanaryRows) return `${f.canaryRows} rows < ${g.minCanaryRows} after ${waitedSeconds}s`;
  if (judge.errors && f.canaryErrors > 0) return `${f.canaryErrors} errors`;
  if (judge.latency && f.canaryP99Ms === null) return 'no p99 latency figure';
  if (judge.latency && f.canaryP99Ms! > g.maxP99Ms) return `p99 ${f.canaryP99Ms} ms > ${g.maxP99Ms} ms`;
  if (f.predictionPsi === null) return `no prediction-shift figure (${f.stableRows} stable rows)`;
  if (f.predictionPsi > g.maxPredictionPsi) return `prediction PSI ${f.predictionPsi.toFixed(3)} > ${g.maxPredictionPsi}`;
  // Once labels arrived for enough of the candidate's rows, how it predicts is evidence too.
  if (judge.performance && g.minLabeledRows > 0) {
    // Without a count of labelled rows the stage cannot tell whether labels arrived: it fails by name.
    if (f.canaryLabeled === undefined) return 'no labelled-row figure';
    if (f.canaryLabeled < g.minLabeledRows) return undefined;
    if (f.task === 'regression') {
      if (f.canaryRmse == null || f.stableRmse == null) return `no RMSE figure (${f.canaryLabeled} labelled candidate rows, ${f.stableLabeled ?? 'no count of'} stable)`;
      // Relative: a regression's RMSE is in the target's units, so only a ratio means the same for every model.
      const rise = f.stableRmse > 0 ? (f.canaryRmse - f.stableRmse) / f.stableRmse : f.canaryRmse > 0 ? Infinity : 0;
      if (rise > g.maxRmseIncrease) return `RMSE ${f.canaryRmse.toPrecision(5)} vs stable ${f.stableRmse.toPrecision(5)} on labelled rows (+${(100 * rise).toFixed(1)}% > ${(100 * g.maxRmseIncrease).toFixed(1)}%; ${f.canaryLabeled} labelled)`;
      return undefined;
    }
    if (f.canaryLogLoss == null || f.stableLogLoss == null) return `no log-loss figure (${f.canaryLabeled} labelled candidate rows, ${f.stableLabeled ?? 'no count of'} stable)`;
    const rise = f.canaryLogLoss - f.stableLogLoss;
    if (rise > g.maxLogLossIncrease) return `log loss ${f.canaryLogLoss.toFixed(4)} vs stable ${f.stableLogLoss.toFixed(4)} on labelled rows (+${rise.toFixed(4)} > ${g.maxLogLossIncrease}; ${f.canaryLabeled} labelled)`;
  }
  return undefined;
}
