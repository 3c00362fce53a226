import { MetricsRegistry } from '../infra/metrics';

/** Step attempts in this process, by step and outcome: what a worker's /metrics shows of its own work. */
export const STEP_METRICS = new MetricsRegistry();

const STEP_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600];

export const stepDuration = STEP_METRICS.histogram('mlops_step_duration_seconds', 'Duration of pipeline step attempts run by this worker, by step and outcome (succeeded, failed).', ['step', 'outcome'], STEP_BUCKETS_SECONDS);
