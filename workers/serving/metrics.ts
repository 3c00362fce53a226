import { LATENCY_BUCKETS_SECONDS, MetricsRegistry } from '../../infra/metrics';

/**
 * The model server's metrics: requests, errors, rows and latency per model, version and role.
 * Roles: `stable`, `canary`, `shadow` (application traffic), `pinned` (a client asked for a
 * version), and `contract` / `load` — the promotion's own test requests, kept apart so they never
 * inflate the application's rates. Batch sizes are per onnxruntime run (see batching.ts), not per request.
 */

/** Powers of two: batch sizes up to the largest batch the server forms by default and past it. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

export interface ServingFigures {
  predictionLog: { pending: number; written: number; dropped: number; failures: number };
  ready: boolean;
  missingVersions: number;
  errorsDropped: number;
}

export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  private readonly requests = this.registry.counter('mlops_inference_requests_total', 'Inference requests served, by model, version and role (stable, canary, shadow, pinned, contract, load).', ['model', 'version', 'role']);
  private readonly errors = this.registry.counter('mlops_inference_errors_total', 'Inference requests that failed inside the model.', ['model', 'version', 'role']);
  private readonly rows = this.registry.counter('mlops_inference_rows_total', 'Rows scored (a batch request scores several).', ['model', 'version', 'role']);
  private readonly latency = this.registry.histogram('mlops_inference_duration_seconds', 'Time a request took to be scored (its wait for a shared run included), in seconds.', ['model', 'version', 'role'], LATENCY_BUCKETS_SECONDS);
  private readonly batchRequests = this.registry.histogram('mlops_inference_batch_requests', 'Requests scored together by one onnxruntime run (dynamic batching; 1: a request ran alone).', ['model', 'version'], BATCH_BUCKETS);
  private readonly batchRows = this.registry.histogram('mlops_inference_batch_rows', 'Rows scored by one onnxruntime run (dynamic batching joins requests).', ['model', 'version'], BATCH_BUCKETS);
  private readonly badRequestsTotal = this.registry.counter('mlops_bad_requests_total', 'Requests refused with a 4xx (bad input, unknown model or version, auth).');

  constructor(figures: () => ServingFigures) {
    const pending = this.registry.gauge('mlops_prediction_log_pending_rows', 'Prediction-log rows buffered, not yet written to PostgreSQL (lost if the process crashes).');
    const written = this.registry.counter('mlops_prediction_log_written_rows_total', 'Prediction-log rows written to PostgreSQL.');
    const dropped = this.registry.counter('mlops_prediction_log_dropped_rows_total', 'Prediction-log rows dropped: the buffer was full or the database stayed away.');
    const failures = this.registry.counter('mlops_prediction_log_write_failures_total', 'Failed writes of a prediction-log batch (retried).');
    const ready = this.registry.gauge('mlops_serving_ready', '1 when every version this server must hold is loaded, else 0.');
    const missing = this.registry.gauge('mlops_serving_missing_versions', 'Versions this server must hold that are not loaded yet.');
    const errorsDropped = this.registry.counter('mlops_serving_error_counts_dropped_total', 'Error counts that could not be written to serving_errors.');
    this.registry.onCollect(() => {
      const f = figures();
      pending.set({}, f.predictionLog.pending);
      written.setTotal({}, f.predictionLog.written);
      dropped.setTotal({}, f.predictionLog.dropped);
      failures.setTotal({}, f.predictionLog.failures);
      ready.set({}, f.ready ? 1 : 0);
      missing.set({}, f.missingVersions);
      errorsDropped.setTotal({}, f.errorsDropped);
    });
  }

  observe(model: string, version: number, role: string, ms: number, rows: number, ok: boolean): void {
    const labels = { model, version: String(version), role };
    this.requests.inc(labels);
    this.rows.inc(labels, rows);
    if (!ok) this.errors.inc(labels);
    this.latency.observe(labels, ms / 1000);
  }

  /** One onnxruntime run: how many requests and rows it scored. */
  batch(model: string, version: number, requests: number, rows: number): void {
    const labels = { model, version: String(version) };
    this.batchRequests.observe(labels, requests);
    this.batchRows.observe(labels, rows);
  }

  badRequest(): void {
    this.badRequestsTotal.inc();
  }

  render(): Promise<string> {
    return this.registry.render();
  }
}
