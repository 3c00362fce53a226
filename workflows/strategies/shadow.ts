import type { PromotionStrategy } from './types';

/** The candidate answers a copy of the traffic that nobody sees; judged on its prediction drift against stable. */
export const shadow: PromotionStrategy = {
  name: 'shadow',
  async rollout(ctx) {
    const { input, candidate, production } = ctx;
    ctx.status.stage = 'shadow';
    const since = ctx.now();
    await ctx.setTraffic({ stable: production, shadow: candidate }, { stable: production });
    await ctx.sleep(input.bakeSeconds * 1000);
    const f = await ctx.acts.canaryFigures({ model: input.model, stable: production, canary: candidate, since });
    ctx.gate('shadow', (f.predictionPsi ?? 0) <= input.gates.maxPredictionPsi, f);
  },
};
