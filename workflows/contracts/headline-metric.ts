import type { TaskKind } from './training-spec';

/**
 * A model's primary metric in words — `AUC 0.7012`, `RMSE 12.3400` or `macro-F1 0.8123` — as
 * its gates judge it first: for a training result (the lifecycle's decisions) and a registry row
 * (`mlops models`), where an older row may lack the figure (`AUC -`).
 */
export function headlineMetric(r: { task?: TaskKind; metrics: { auc?: number; rmse?: number; macroF1?: number } }): string {
  const text = (v: number | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : '-');
  if (r.task === 'regression') return `RMSE ${text(r.metrics.rmse)}`;
  if (r.task === 'multiclass') return `macro-F1 ${text(r.metrics.macroF1)}`;
  return `AUC ${text(r.metrics.auc)}`;
}
