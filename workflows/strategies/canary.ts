import { patched } from '@temporalio/workflow';
import { bakeForEvidence, evidenceProblem } from './evidence';
import type { PromotionStrategy } from './types';

/**
 * Weight steps (e.g. 5, 25, 50 %), each baked and judged on the canary's own rows: errors, p99
 * and prediction drift against stable. A stage without enough rows bakes longer, then fails.
 */
export const canary: PromotionStrategy = {
  name: 'canary',
  async rollout(ctx) {
    const { input, candidate, production } = ctx;
    for (const w of input.canarySteps.filter((x) => x < 100)) {
      ctx.status.stage = `canary ${w}%`;
      const since = ctx.now();
      await ctx.setTraffic({ stable: production, canary: candidate, canaryWeight: w }, { stable: production });
      // Guarded: promotions started before judged thin evidence as a pass.
      if (patched('canary-evidence')) {
        const { figures, waitedSeconds } = await bakeForEvidence(ctx, 'canary', since);
        const why = evidenceProblem(ctx, figures, waitedSeconds, { errors: true, latency: true, performance: patched('labelled-performance') });
        ctx.gate(`canary ${w}%`, why === undefined, figures, why);
        continue;
      }
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
