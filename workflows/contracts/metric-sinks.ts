import type { Sinks } from '@temporalio/workflow';

/**
 * What our workflows report to the worker's /metrics, through Temporal sinks: a sink call is no
 * command in the history, so adding one changes no replay, and the worker runs it only when the
 * workflow is not replaying (each decision is counted once per worker that made it).
 */

/** What became of a retrain request at the model's lifecycle, whatever sent it. */
export type RetrainDecisionKind = 'started' | 'duplicate' | 'coalesced' | 'deferred' | 'rejected';

export type PromotionOutcomeKind = 'promoted' | 'rolled-back' | 'rejected' | 'failed';

export interface MlopsMetricSinks extends Sinks {
  mlopsMetrics: {
    retrainDecision(d: { model: string; decision: RetrainDecisionKind; source: string }): void;
    promotion(p: { model: string; strategy: string; outcome: PromotionOutcomeKind }): void;
  };
}
