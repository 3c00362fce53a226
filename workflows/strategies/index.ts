import { canary } from './canary';
import { direct } from './direct';
import { shadow } from './shadow';
import type { PromotionStrategy } from './types';

export type { PromotionStrategy, RolloutContext } from './types';

/** The promotion strategies by name. A new one is a file beside these and one line here. */
export const STRATEGIES = { direct, canary, shadow } as const satisfies Record<string, PromotionStrategy>;

export type StrategyName = keyof typeof STRATEGIES;
export const STRATEGY_NAMES = Object.keys(STRATEGIES) as [StrategyName, ...StrategyName[]];
