import * as ort from 'onnxruntime-node';
import type { ParsedInfer } from './oip';

/**
 * Dynamic batching: requests checked for the same model version that are waiting together go to
 * onnxruntime as one `session.run`, and each gets its own rows of the output back. A run costs
 * about as much for one row as for dozens (the fixed cost of a call dominates), and the run
 * holds the event loop, so under concurrent load one run for many requests frees the loop for
 * the HTTP work. A request joins a batch only once it passed its own checks, so a bad request
 * never reaches its neighbours' run; a run that fails for a batch is retried request by request,
 * so a request onnxruntime refuses fails alone.
 *
 * When a batch goes: as soon as no other request for the version is still being read or
 * checked (so a lone request waits for no one: the queue is flushed on the next turn of the
 * event loop), when it holds `maxRows` rows, or `maxDelayMs` after its first request came,
 * whichever is first.
 */

export interface BatchingOptions {
  /** The longest a request waits for others to join its batch; 0: every request runs alone. */
  maxDelayMs: number;
  /** A batch is sent once it holds this many rows; a request larger than this runs alone. */
  maxRows: number;
  /** Scores per row of the version's output (a multiclass model's class count); 1 when absent. */
  width?: number;
}

export const DEFAULT_BATCHING: BatchingOptions = { maxDelayMs: 2, maxRows: 1024 };

/** Scores feeds: `session.run` of the version, giving its scores output (`width` values a row). */
export type RunFeeds = (feeds: Record<string, ort.Tensor>) => Promise<Float32Array>;

/** One numeric input's rows of every request, in order, in `into`. */
function joined<T extends Float32Array | BigInt64Array>(parts: ParsedInfer[], name: string, into: T): T {
  let at = 0;
  for (const p of parts) {
    const d = p.feeds[name]!.data as T;
    (into as Float32Array).set(d as Float32Array, at);
    at += d.length;
  }
  return into;
}

/** The feeds of several requests as one: each input's rows, the requests' in order. */
export function concatFeeds(parts: ParsedInfer[]): Record<string, ort.Tensor> {
  const total = parts.reduce((n, p) => n + p.rows, 0);
  const out: Record<string, ort.Tensor> = {};
  for (const name of Object.keys(parts[0]!.feeds)) {
    const first = parts[0]!.feeds[name]!;
    if (first.type === 'string') {
      const values: string[] = [];
      for (const p of parts) for (const v of p.feeds[name]!.data as string[]) values.push(v);
      out[name] = new ort.Tensor('string', values, [total, 1]);
    } else if (first.type === 'int64') {
      out[name] = new ort.Tensor('int64', joined(parts, name, new BigInt64Array(total)), [total, 1]);
    } else {
      out[name] = new ort.Tensor('float32', joined(parts, name, new Float32Array(total)), [total, 1]);
    }
  }
  return out;
}

/** Each request's rows of a batch's output (views into it, no copies), or undefined when the output is not `width` values per row. */
export function splitRows(output: Float32Array, rows: number[], width = 1): Float32Array[] | undefined {
  const total = rows.reduce((n, r) => n + r, 0);
  if (output.length !== total * width) return undefined;
  let at = 0;
  return rows.map((r) => output.subarray(at, (at += r * width)));
}

interface Waiting {
  parsed: ParsedInfer;
  resolve(probs: Float32Array): void;
  reject(err: unknown): void;
}

/** One model version's queue. `expect`/`arrived` bracket a request's reading and checks, so the queue knows whom to wait for. */
export class BatchQueue {
  private waiting: Waiting[] = [];
  private rows = 0;
  private coming = 0;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;

  constructor(
    private readonly run: RunFeeds,
    private readonly opts: BatchingOptions,
    /** Called once per `session.run`: how many requests and rows it scored. */
    private readonly onBatch: (requests: number, rows: number) => void = () => undefined,
  ) {}

  /** A request for this version is being read and checked: a batch forming now may wait for it. */
  expect(): void {
    this.coming++;
  }

  /** That request is checked (or refused): no more waiting for it. */
  arrived(): void {
    this.coming--;
    if (this.coming === 0 && this.waiting.length) this.flushSoon();
  }

  /** Scores one checked request, alone or in a batch; resolves to its own rows of the output. */
  submit(parsed: ParsedInfer): Promise<Float32Array> {
    if (this.opts.maxDelayMs <= 0 || parsed.rows >= this.opts.maxRows) return this.alone(parsed);
    return new Promise<Float32Array>((resolve, reject) => {
      if (this.rows + parsed.rows > this.opts.maxRows) this.flush();
      this.waiting.push({ parsed, resolve, reject });
      this.rows += parsed.rows;
      if (this.rows >= this.opts.maxRows) return this.flush();
      if (!this.timer) this.timer = setTimeout(() => this.flush(), this.opts.maxDelayMs);
      this.flushSoon();
    });
  }

  private alone(parsed: ParsedInfer): Promise<Float32Array> {
    this.onBatch(1, parsed.rows);
    return this.run(parsed.feeds);
  }

  /** On the next turn of the event loop, after the requests whose bytes are here now were read. */
  private flushSoon(): void {
    this.soon ??= setImmediate(() => {
      this.soon = undefined;
      if (this.coming === 0) this.flush();
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.timer = this.soon = undefined;
    const batch = this.waiting;
    this.waiting = [];
    this.rows = 0;
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const [w] = batch;
      this.alone(w!.parsed).then(w!.resolve, w!.reject);
      return;
    }
    void this.together(batch);
  }

  private async together(batch: Waiting[]): Promise<void> {
    const parts = batch.map((w) => w.parsed);
    let split: Float32Array[] | undefined;
    try {
      split = splitRows(await this.run(concatFeeds(parts)), parts.map((p) => p.rows), this.opts.width);
    } catch {
      split = undefined;
    }
    if (split) {
      this.onBatch(batch.length, parts.reduce((n, p) => n + p.rows, 0));
      batch.forEach((w, i) => w.resolve(split[i]!));
      return;
    }
    // The batch failed, or its output was not one value per row: each request on its own, as without batching.
    for (const w of batch) this.alone(w.parsed).then(w.resolve, w.reject);
  }
}
