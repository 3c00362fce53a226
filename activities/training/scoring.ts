import * as ort from 'onnxruntime-node';
import type { FeatureSpec, Table } from '../ml/dataset';
import { ORT_TYPES, modelInputs } from '../ml/model-inputs';
import { outputOf, taskOfOutput } from '../ml/task-output';
import type { TaskKind } from '../../workflows/contracts/training-spec';

/**
 * Scoring a raw-feature ONNX model (one [batch, 1] input per raw column: floats, strings for categorical
 * ones, epoch seconds for a timestamp the graph derives features from; one output: `probability` for a binary task, `prediction` for a regression) on a table:
 * what evaluation, validation and serving all do.
 */

export async function createSession(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export function feedsFor(table: Table, features: FeatureSpec[], start: number, end: number): Record<string, ort.Tensor> {
  const n = end - start;
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of modelInputs(features)) {
    if (input.datatype === 'INT64') {
      const stamps = table.timestamps?.[input.name];
      if (!stamps) throw new Error(`the table has no epoch seconds of ${input.name}, the timestamp ${input.derives!.map((d) => d.name).join(', ')} derive from`);
      feeds[input.name] = new ort.Tensor('int64', stamps.subarray(start, end), [n, 1]);
    } else if (input.datatype === 'FP32') feeds[input.name] = new ort.Tensor('float32', table.numeric[input.name]!.subarray(start, end), [n, 1]);
    else feeds[input.name] = new ort.Tensor('string', table.categorical[input.name]!.slice(start, end), [n, 1]);
  }
  return feeds;
}

const SCORING_BATCH = 16_384;

/** The table's task's output on its first `rows` rows (all by default); a graph without that output throws, naming what it has. */
export async function scoreTable(session: ort.InferenceSession, table: Table, features: FeatureSpec[], rows = table.rows): Promise<Float32Array> {
  const name = outputOf(table.task);
  if (!session.outputNames.includes(name)) throw new Error(`the model has no output ${name} (a ${table.task ?? 'binary'} task's); it gives ${session.outputNames.join(', ')}`);
  const out = new Float32Array(rows);
  for (let start = 0; start < rows; start += SCORING_BATCH) {
    const end = Math.min(rows, start + SCORING_BATCH);
    const result = await session.run(feedsFor(table, features, start, end), [name]);
    out.set(result[name]!.data as Float32Array, start);
  }
  return out;
}

/** The serving contract: does the graph take exactly these raw features and give the task's output? */
export function signatureProblems(session: ort.InferenceSession, features: FeatureSpec[], task: TaskKind = 'binary'): string[] {
  const output = outputOf(task);
  const problems: string[] = [];
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const wanted = modelInputs(features);
  for (const f of wanted) {
    const m = inputs.get(f.name);
    if (!m) {
      problems.push(`input ${f.name} is missing`);
      continue;
    }
    const want = ORT_TYPES[f.datatype];
    if (m.isTensor && m.type !== want) problems.push(`input ${f.name} is ${m.type}, expected ${want}`);
    if (m.isTensor && m.shape.length !== 2) problems.push(`input ${f.name} has rank ${m.shape.length}, expected [batch, 1]`);
  }
  for (const name of inputs.keys()) if (!wanted.some((f) => f.name === name)) problems.push(`unexpected input ${name}`);
  const out = session.outputMetadata.find((m) => m.name === output);
  if (!out) problems.push(`output ${output} is missing (outputs: ${session.outputNames.join(', ')}; a ${task} model gives ${output})`);
  else if (out.isTensor && out.type !== 'float32') problems.push(`output ${output} is ${out.type}, expected float32`);
  return problems;
}

/** The task a stored output signature gives (its one output's name); undefined when it names no task's output. */
export function taskOfSignature(outputs: unknown): TaskKind | undefined {
  if (!Array.isArray(outputs) || outputs.length !== 1) return undefined;
  return taskOfOutput(String((outputs[0] as { name?: unknown }).name));
}

/** The features a stored input signature names: its inverse, for code that starts from a registered version. */
export { featuresOfInputs as featuresOfSignature } from '../ml/model-inputs';

export function signatureOf(features: FeatureSpec[], task: TaskKind = 'binary') {
  return {
    inputs: modelInputs(features).map((i) => ({ name: i.name, datatype: i.datatype, shape: [-1, 1], ...(i.derives ? { derives: i.derives } : {}) })),
    outputs: [{ name: outputOf(task), datatype: 'FP32', shape: [-1, 1] }],
  };
}
