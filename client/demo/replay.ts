import { z } from 'zod';
import { TASK, type ReplayRow } from './data';
import { featureSpecs } from '../../activities/data/prepare';
import { modelInputs } from '../../activities/ml/model-inputs';

/**
 * Traffic and ground truth through the model server's public API, as an application would send
 * them: OIP REST inference in small batches with `X-Request-Id`, labels later through
 * `/feedback` (admin token). Every batch's answer (which version served it) is recorded for the
 * report's serving chart.
 */

export interface ServedBatch {
  /** ms since epoch when the answer came. */
  at: number;
  month: string;
  requestId: string;
  rows: number;
  version: number | null;
  ok: boolean;
  ms: number;
}

const inferResponse = z.object({
  model_version: z.string(),
  outputs: z.array(z.object({ name: z.string(), data: z.array(z.number()) })).min(1),
});
const feedbackResponse = z.object({ attached: z.number(), unknown: z.number() });

export interface Labelled {
  requestId: string;
  label: 0 | 1;
}

export class Replayer {
  readonly served: ServedBatch[] = [];
  errors = 0;
  lastError?: string;

  constructor(private readonly opts: { serverUrl: string; adminToken: string; model: string }) {}

  /** Sends one batch; returns the per-row request ids the prediction log keeps (`<id>#<i>`). */
  async infer(month: string, requestId: string, rows: ReplayRow[]): Promise<Labelled[]> {
    const inputs = modelInputs(featureSpecs(TASK.features)).map((f) => ({
      name: f.name,
      datatype: f.datatype,
      shape: [rows.length, 1],
      data: rows.map((r) => r.features[f.name]),
    }));
    const started = performance.now();
    let version: number | null = null;
    let ok = false;
    try {
      const res = await fetch(`${this.opts.serverUrl}/v2/models/${this.opts.model}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId },
        body: JSON.stringify({ inputs }),
        signal: AbortSignal.timeout(10_000),
      });
      const body: unknown = await res.json();
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`);
      const parsed = inferResponse.parse(body);
      version = Number(parsed.model_version);
      ok = true;
    } catch (err) {
      this.errors++;
      this.lastError = err instanceof Error ? err.message : String(err);
    }
    this.served.push({ at: Date.now(), month, requestId, rows: rows.length, version, ok, ms: performance.now() - started });
    if (!ok) return [];
    // The server logs a batch row by row as `<request id>#<row>`; a single row keeps the id.
    return rows.map((r, i) => ({ requestId: rows.length === 1 ? requestId : `${requestId}#${i}`, label: r.label }));
  }

  /** Ground truth for earlier predictions; in requests of at most 5000 labels. */
  async feedback(labels: Labelled[]): Promise<{ attached: number; unknown: number }> {
    let attached = 0;
    let unknown = 0;
    for (let i = 0; i < labels.length; i += 5000) {
      const chunk = labels.slice(i, i + 5000);
      const res = await fetch(`${this.opts.serverUrl}/v2/models/${this.opts.model}/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.opts.adminToken}` },
        body: JSON.stringify({ labels: chunk.map((l) => ({ request_id: l.requestId, label: l.label })) }),
        signal: AbortSignal.timeout(60_000),
      });
      const body: unknown = await res.json();
      if (!res.ok) throw new Error(`feedback: HTTP ${res.status}: ${JSON.stringify(body)}`);
      const r = feedbackResponse.parse(body);
      attached += r.attached;
      unknown += r.unknown;
    }
    return { attached, unknown };
  }
}
