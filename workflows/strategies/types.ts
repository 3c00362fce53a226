import type { CanaryFigures, DeploymentActivities, Traffic } from '../../activities/deployment';
import type { PromotionInputParsed, PromotionStatus } from '../promotion';

/**
 * A promotion strategy: how traffic moves from the production version to the candidate once
 * the candidate has passed the contract and load tests (and any approval). It shifts traffic
 * with `setTraffic` (each shift is undone if a later gate fails) and judges each stage with
 * `gate`; the promotion then gives the candidate all traffic and the production alias.
 */
export interface RolloutContext {
  input: PromotionInputParsed;
  candidate: number;
  /** The version in production now. */
  production: number;
  status: PromotionStatus;
  acts: Pick<DeploymentActivities, 'canaryFigures'>;
  setTraffic(traffic: Traffic, undo?: Traffic): Promise<void>;
  /** Records the figures; a failed gate (or a rollback asked meanwhile) ends the promotion and rolls back. */
  gate(name: string, ok: boolean, figures: CanaryFigures | Record<string, unknown>, why?: string): void;
  sleep(ms: number): Promise<void>;
  now(): string;
}

export interface PromotionStrategy {
  name: string;
  /** Runs only when a version is in production; a first version goes straight to all traffic. */
  rollout(ctx: RolloutContext): Promise<void>;
}
