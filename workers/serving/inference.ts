import { randomUUID } from 'node:crypto';
import type { Logger } from '../../infra/log';
import { BatchQueue, DEFAULT_BATCHING, type BatchingOptions } from './batching';
import { MULTICLASS_LABEL } from '../../activities/ml/task-output';
import type { ServerMetrics } from './metrics';
import type { LoadedVersion, ModelStore } from './models';
import type { InputSignature, ParsedInfer } from './oip';
import { classLabels, type AnswerShape } from './answer';
import type { PredictionLog, PredictionRow } from './prediction-log';
import type { ServingSync } from './sync';

/**
 * The inference path every transport (REST, gRPC) goes through, so they route, score, log and
 * count alike: the traffic split picks the version, the request is checked against that
 * version's signature, the version scores it (prediction log, metrics, error counts), and the
 * shadow version, if any, scores it too without answering. Concurrent requests for a version
 * share onnxruntime runs (batching.ts); logging and metrics stay per request.
 */

export interface InferDeps {
  store: ModelStore;
  predictions: PredictionLog;
  metrics: ServerMetrics;
  sync: ServingSync;
  log: Logger;
  batching?: BatchingOptions;
}

export interface InferCall<P extends ParsedInfer> {
  name: string;
  /** A version asked for (pinned); else the traffic split decides. */
  version?: number;
  /** The caller's request id (`x-request-id`), already checked. */
  requestId?: string;
  /** The caller's `x-mlops-traffic`: the promotion's `contract` and `load` requests are counted apart. */
  traffic?: string;
  /** Decodes and checks the request against the version that will score it: its inputs and the outputs it gives. */
  parse(signature: InputSignature[], answer: AnswerShape): P | Promise<P>;
}

export interface InferResult<P extends ParsedInfer> {
  target: LoadedVersion;
  parsed: P;
  requestId: string;
  /** The version's scores, rows × width (a multiclass model's probabilities, row-major). */
  probs: Float32Array;
}

const REQUEST_ID = /^[\w.:-]{1,200}$/;

/** A caller's request id when it is one we can log (else the body's id or a UUID is used). */
export function requestIdOf(value: unknown): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
}

export type Infer = <P extends ParsedInfer>(call: InferCall<P>) => Promise<InferResult<P>>;

export function createInfer(deps: InferDeps): Infer {
  const { predictions, metrics, sync } = deps;
  const batching = deps.batching ?? DEFAULT_BATCHING;
  // Keyed by the loaded version, so a reloaded version gets a fresh queue and an unloaded one's goes with it.
  const queues = new WeakMap<LoadedVersion, BatchQueue>();
  const queueOf = (v: LoadedVersion): BatchQueue => {
    let q = queues.get(v);
    if (!q) {
      q = new BatchQueue(
        async (feeds) => (await v.session.run(feeds, [v.output]))[v.output]!.data as Float32Array,
        { ...batching, width: v.width },
        (requests, rows) => metrics.batch(v.model, v.version, requests, rows),
      );
      queues.set(v, q);
    }
    return q;
  };

  const score = async (v: LoadedVersion, parsed: ParsedInfer, role: string, requestId: string): Promise<Float32Array> => {
    v.inflight++;
    const started = performance.now();
    let ok = false;
    try {
      const probs = await queueOf(v).submit(parsed);
      ok = true;
      const ms = performance.now() - started;
      predictions.append(logRows(v, parsed, probs, role, requestId, ms));
      return probs;
    } finally {
      v.inflight--;
      metrics.observe(v.model, v.version, role, performance.now() - started, parsed.rows, ok);
      if (!ok) sync.recordError(v.modelVersionId, role);
    }
  };

  return async <P extends ParsedInfer>(call: InferCall<P>): Promise<InferResult<P>> => {
    const route = deps.store.route(call.name, call.version);
    const queue = queueOf(route.target);
    // While this request is read and checked, a batch forming for its version may wait for it.
    queue.expect();
    let parsed: P;
    try {
      parsed = await call.parse(route.target.inputs, route.target);
    } finally {
      queue.arrived();
    }
    const requestId = call.requestId ?? parsed.id ?? randomUUID();
    const role = route.role === 'pinned' && (call.traffic === 'contract' || call.traffic === 'load') ? call.traffic : route.role;
    const probs = await score(route.target, parsed, role, requestId);
    // Shadow: the same request scored by another version, logged, never returned.
    if (route.shadow && route.shadow !== route.target) {
      const shadow = route.shadow;
      void score(shadow, parsed, 'shadow', `${requestId}:shadow`).catch((err) => deps.log.warn(`shadow v${shadow.version}: ${err instanceof Error ? err.message : String(err)}`));
    }
    return { target: route.target, parsed, requestId, probs };
  };
}

/** The prediction-log rows of a scored request: one per row (`<id>#<i>` when there are several). */
function logRows(v: LoadedVersion, parsed: ParsedInfer, probs: Float32Array, role: string, requestId: string, ms: number): PredictionRow[] {
  const ts = new Date();
  const names = Object.keys(parsed.columns);
  const columns = names.map((k) => parsed.columns[k]!);
  const rows: PredictionRow[] = new Array<PredictionRow>(parsed.rows);
  // A multiclass row logs its class probabilities and its class: what monitoring and the canary judge.
  const k = v.width;
  const labels = v.classes ? classLabels(probs, v.classes) : undefined;
  for (let i = 0; i < parsed.rows; i++) {
    const inputs: Record<string, number | string | null | undefined> = {};
    for (let c = 0; c < names.length; c++) inputs[names[c]!] = columns[c]![i];
    rows[i] = {
      requestId: parsed.rows === 1 ? requestId : `${requestId}#${i}`,
      modelId: v.modelId,
      modelVersionId: v.modelVersionId,
      ts,
      inputs,
      outputs: labels ? { [v.output]: Array.from(probs.subarray(i * k, (i + 1) * k)), [MULTICLASS_LABEL]: labels[i], role } : { [v.output]: probs[i], role },
      latencyMs: ms / parsed.rows,
    };
  }
  return rows;
}
