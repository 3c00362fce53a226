import type { PromotionStrategy } from './types';

/** Weight steps (e.g. 5, 25, 50 %), each baked and judged on the canary's errors, p99 and prediction drift against stable. */
export const canary: PromotionStrategy = {
  name: 'canary',
  async rollout(ctx) {
    const { input, candidate, production } = ctx;
    for (const w of input.canarySteps.filter((x) => x < 100)) {
      ctx.status.stage = `canary ${w}%`;
      const since = ctx.now();
      await ctx.setTraffic({ stable: production, canary: candidate, canaryWeight: w }, { stable: production });
      await ctx.sleep(input.bakeSeconds * 1000);
      const f = await ctx.acts.canaryFigures({ model: input.model, stable: production, canary: candidate, since });
      const judged = f.canaryRows >= input.gates.minCanaryRows;
      ctx.gate(
        `canary ${w}%`,
        !judged || (f.canaryErrors === 0 && (f.canaryP99Ms ?? 0) <= input.gates.maxP99Ms && (f.predictionPsi ?? 0) <= input.gates.maxPredictionPsi),
        f,
      );
    }
  },
};
