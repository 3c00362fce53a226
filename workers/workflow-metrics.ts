import type { InjectedSinks } from '@temporalio/worker';
import { MetricsRegistry } from '../infra/metrics';
import type { MlopsMetricSinks } from '../workflows/contracts/metric-sinks';

/** Decisions our workflows made on this worker, fed by their sinks (see contracts/metric-sinks). */
export const WORKFLOW_METRICS = new MetricsRegistry();

const retrainDecisions = WORKFLOW_METRICS.counter(
  'mlops_lifecycle_retrain_decisions_total',
  'Retrain decisions the model lifecycles made on this worker, by model, decision and source (monitoring, schedule, alertmanager, api, …): started (one per training, by the source of the request that started it), duplicate, coalesced (joined a waiting or running retrain), deferred (held by cooldown or the daily budget), rejected (bad request, or no training could be built for it).',
  ['model', 'decision', 'source'],
);
const promotions = WORKFLOW_METRICS.counter('mlops_promotions_total', 'Promotions that ended on this worker, by model, strategy and outcome (promoted, rolled-back, rejected, failed).', ['model', 'strategy', 'outcome']);

/** The sinks a worker on the control queue (and a replay worker) registers. */
export function workflowMetricSinks(): InjectedSinks<MlopsMetricSinks> {
  return {
    mlopsMetrics: {
      retrainDecision: { fn: (_info, d) => retrainDecisions.inc({ model: d.model, decision: d.decision, source: d.source || 'unknown' }), callDuringReplay: false },
      promotion: { fn: (_info, p) => promotions.inc({ model: p.model, strategy: p.strategy, outcome: p.outcome }), callDuringReplay: false },
    },
  };
}
