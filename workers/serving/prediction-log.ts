import type { Kysely } from 'kysely';
import type { Database } from '../../infra/db/schema';
import { insertPredictions } from '../../infra/db/repositories';

export interface PredictionRow {
  requestId: string;
  modelId: string;
  modelVersionId: string;
  ts: Date;
  inputs: unknown;
  outputs: unknown;
  latencyMs: number;
}

/**
 * Predictions go to PostgreSQL in batches, off the request path: requests append to a buffer,
 * a timer (or a full buffer) writes it. A failed write is retried with the next batch; past
 * `maxBuffered` rows the oldest are dropped and counted (`dropped`), so the server never runs out
 * of memory because the database is slow. `close` (SIGTERM/SIGINT) writes the whole buffer,
 * retrying for up to `closeTimeoutMs`; what still cannot be written is counted as dropped.
 *
 * The loss bound: a graceful stop loses nothing while the database answers; a crash (kill -9,
 * OOM) loses the rows buffered at that moment — at most one flush interval's worth of
 * predictions while the database keeps up, never more than `maxBuffered` rows — and rows dropped
 * because the database was down are counted in `mlops_prediction_log_dropped_total`.
 */
export class PredictionLog {
  private buffer: PredictionRow[] = [];
  private timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  dropped = 0;
  written = 0;
  failures = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly opts: { intervalMs?: number; batchSize?: number; maxBuffered?: number; closeTimeoutMs?: number; onError?: (err: unknown) => void } = {},
  ) {
    this.timer = setInterval(() => void this.flush(), opts.intervalMs ?? 500);
    this.timer.unref();
  }

  append(rows: PredictionRow[]): void {
    this.buffer.push(...rows);
    const max = this.opts.maxBuffered ?? 100_000;
    if (this.buffer.length > max) {
      this.dropped += this.buffer.length - max;
      this.buffer.splice(0, this.buffer.length - max);
    }
    if (this.buffer.length >= (this.opts.batchSize ?? 1000)) void this.flush();
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Writes everything buffered so far (one writer at a time). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      while (this.buffer.length) {
        const batch = this.buffer.slice(0, this.opts.batchSize ?? 1000);
        try {
          await insertPredictions(this.db, batch);
          this.buffer.splice(0, batch.length);
          this.written += batch.length;
        } catch (err) {
          this.failures++;
          this.opts.onError?.(err);
          return;
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const until = Date.now() + (this.opts.closeTimeoutMs ?? 10_000);
    await this.flush();
    while (this.buffer.length && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      await this.flush();
    }
    if (this.buffer.length) {
      this.opts.onError?.(new Error(`${this.buffer.length} buffered predictions could not be written before stopping; they are dropped`));
      this.dropped += this.buffer.length;
      this.buffer = [];
    }
  }
}
