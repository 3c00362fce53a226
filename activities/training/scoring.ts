import * as ort from 'onnxruntime-node';
import type { FeatureSpec, Table } from '../ml/dataset';

/**
 * Scoring a raw-feature ONNX model (one [batch, 1] input per feature, strings for categorical
 * ones, output `probability`) on a table: what evaluation, validation and serving all do.
 */

export const OUTPUT_NAME = 'probability';

export async function createSession(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export function feedsFor(table: Table, features: FeatureSpec[], start: number, end: number): Record<string, ort.Tensor> {
  const n = end - start;
  const feeds: Record<string, ort.Tensor> = {};
  for (const f of features) {
    feeds[f.name] =
      f.kind === 'numeric'
        ? new ort.Tensor('float32', table.numeric[f.name]!.subarray(start, end), [n, 1])
        : new ort.Tensor('string', table.categorical[f.name]!.slice(start, end), [n, 1]);
  }
  return feeds;
}

export async function scoreTable(session: ort.InferenceSession, table: Table, features: FeatureSpec[], batch = 16_384): Promise<Float32Array> {
  const out = new Float32Array(table.rows);
  for (let start = 0; start < table.rows; start += batch) {
    const end = Math.min(table.rows, start + batch);
    const result = await session.run(feedsFor(table, features, start, end));
    out.set(result[OUTPUT_NAME]!.data as Float32Array, start);
  }
  return out;
}

/** The serving contract: does the graph take exactly these raw features and give `probability`? */
export function signatureProblems(session: ort.InferenceSession, features: FeatureSpec[]): string[] {
  const problems: string[] = [];
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  for (const f of features) {
    const m = inputs.get(f.name);
    if (!m) {
      problems.push(`input ${f.name} is missing`);
      continue;
    }
    const want = f.kind === 'numeric' ? 'float32' : 'string';
    if (m.isTensor && m.type !== want) problems.push(`input ${f.name} is ${m.type}, expected ${want}`);
    if (m.isTensor && m.shape.length !== 2) problems.push(`input ${f.name} has rank ${m.shape.length}, expected [batch, 1]`);
  }
  for (const name of inputs.keys()) if (!features.some((f) => f.name === name)) problems.push(`unexpected input ${name}`);
  const out = session.outputMetadata.find((m) => m.name === OUTPUT_NAME);
  if (!out) problems.push(`output ${OUTPUT_NAME} is missing (outputs: ${session.outputNames.join(', ')})`);
  else if (out.isTensor && out.type !== 'float32') problems.push(`output ${OUTPUT_NAME} is ${out.type}, expected float32`);
  return problems;
}

/** The features a stored input signature names: its inverse, for code that starts from a registered version. */
export function featuresOfSignature(inputs: ReadonlyArray<{ name: string; datatype: string }>): FeatureSpec[] {
  return inputs.map((s) => ({ name: s.name, kind: s.datatype === 'BYTES' ? 'categorical' : 'numeric' }));
}

export function signatureOf(features: FeatureSpec[]) {
  return {
    inputs: features.map((f) => ({ name: f.name, datatype: f.kind === 'numeric' ? 'FP32' : 'BYTES', shape: [-1, 1] })),
    outputs: [{ name: OUTPUT_NAME, datatype: 'FP32', shape: [-1, 1] }],
  };
}
