import type { PromotionStrategy } from './types';

/** All traffic to the candidate at once, after the contract and load gates. */
export const direct: PromotionStrategy = {
  name: 'direct',
  rollout: async () => undefined,
};
