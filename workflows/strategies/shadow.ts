import { patched } from '@temporalio/workflow';
import { bakeForEvidence, evidenceProblem } from './evidence';
import type { PromotionStrategy } from './types';

/** The candidate answers a copy of the traffic that nobody sees; judged on its own (shadow) rows against stable. */
export const shadow: PromotionStrategy = {
  name: 'shadow',
  async rollout(ctx) {
    const { input, candidate, production } = ctx;
    ctx.status.stage = 'shadow';
    const since = ctx.now();
    await ctx.setTraffic({ stable: production, shadow: candidate }, { stable: production });
    // Guarded: promotions started before read no shadow rows and passed.
    if (patched('shadow-evidence')) {
      const { figures, waitedSeconds } = await bakeForEvidence(ctx, 'shadow', since);
      // Guarded: shadow stages started before judged prediction shift only.
      const why = evidenceProblem(ctx, figures, waitedSeconds, { errors: true, latency: false, performance: patched('labelled-performance') });
      ctx.gate('shadow', why === undefined, figures, why);
      return;
    }
    await ctx.sleep(input.bakeSeconds * 1000);
    const f = await ctx.acts.canaryFigures({ model: input.model, stable: production, canary: candidate, since });
    ctx.gate('shadow', (f.predictionPsi ?? 0) <= input.gates.maxPredictionPsi, f);
  },
};
