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
 * `maxBuffered` rows the oldest are dropped and counted, so the server never runs out of memory
 * because the database is slow.
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
    private readonly opts: { intervalMs?: number; batchSize?: number; maxBuffered?: number; onError?: (err: unknown) => void } = {},
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
    await this.flush();
  }
}
