import * as ort from 'onnxruntime-node';
import type { ClassList, FeatureSpec, Table } from '../ml/dataset';
import { ORT_TYPES, modelInputs } from '../ml/model-inputs';
import { MULTICLASS_LABEL, TASK_OUTPUT, outputOf, taskOfOutput } from '../ml/task-output';
import { integerClasses } from '../ml/class-output';
import type { TaskKind } from '../../workflows/contracts/training-spec';

/**
 * Scoring a raw-feature ONNX model (one [batch, 1] input per raw column: floats, strings for categorical
 * ones, epoch seconds for a timestamp the graph derives features from; one output: `probability` for a binary task, `prediction` for a regression) on a table:
 * what evaluation, validation and serving all do.
 */

/** One thread per session: steps run side by side on a worker, each on its own core. */
export const SCORING_SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1 };

export async function createSession(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, SCORING_SESSION_OPTIONS);
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

/** The table's task's output on its first `rows` rows (all by default; multiclass: rows × classes, row-major); a graph without that output throws, naming what it has. */
export async function scoreTable(session: ort.InferenceSession, table: Table, features: FeatureSpec[], rows = table.rows): Promise<Float32Array> {
  const name = outputOf(table.task);
  if (!session.outputNames.includes(name)) throw new Error(`the model has no output ${name} (a ${table.task ?? 'binary'} task's); it gives ${session.outputNames.join(', ')}`);
  const width = table.task === 'multiclass' ? table.classes!.length : 1;
  const out = new Float32Array(rows * width);
  for (let start = 0; start < rows; start += SCORING_BATCH) {
    const end = Math.min(rows, start + SCORING_BATCH);
    const result = (await session.run(feedsFor(table, features, start, end), [name]))[name]!;
    if (result.data.length !== (end - start) * width) throw new Error(`output ${name} has shape [${result.dims.join(', ')}] for ${end - start} rows; the task needs [rows, ${width}]`);
    out.set(result.data as Float32Array, start * width);
  }
  return out;
}

/** The serving contract: does the graph take exactly these raw features and give the task's output? */
export function signatureProblems(session: ort.InferenceSession, features: FeatureSpec[], task: TaskKind = 'binary', classes?: ClassList): string[] {
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
  if (task === 'multiclass') problems.push(...classOutputProblems(session, classes));
  return problems;
}

/** A multiclass graph's outputs: one probability column per class, and `label` of the classes' type. */
function classOutputProblems(session: ort.InferenceSession, classes: ClassList | undefined): string[] {
  if (!classes?.length) return ['the task has no classes'];
  const problems: string[] = [];
  const probs = session.outputMetadata.find((m) => m.name === TASK_OUTPUT.multiclass);
  const width = probs?.isTensor ? probs.shape[1] : undefined;
  // A symbolic width is checked on every scored batch (scoreTable); a fixed one must be k.
  if (probs?.isTensor && (probs.shape.length !== 2 || (typeof width === 'number' && width !== classes.length))) problems.push(`output ${TASK_OUTPUT.multiclass} has shape [${probs.shape.join(', ')}], expected [batch, ${classes.length}]`);
  const label = session.outputMetadata.find((m) => m.name === MULTICLASS_LABEL);
  const want = integerClasses(classes) ? 'int64' : 'string';
  if (!label) problems.push(`output ${MULTICLASS_LABEL} is missing (outputs: ${session.outputNames.join(', ')}; a multiclass model gives the class)`);
  else if (label.isTensor && label.type !== want) problems.push(`output ${MULTICLASS_LABEL} is ${label.type}, expected ${want} (the classes are ${integerClasses(classes) ? 'integers' : 'strings'})`);
  return problems;
}

/**
 * What a stored output signature says the version answers: one output of a binary or regression
 * task, or a multiclass task's probabilities (with their classes, at least two) and label;
 * undefined for anything else — a version nothing can tell the scores of.
 */
export function answerOfSignature(outputs: unknown): { task: TaskKind; output: string; width: number; classes?: ClassList; names: string[] } | undefined {
  if (!Array.isArray(outputs)) return undefined;
  const sig = outputs as Array<{ name?: unknown; classes?: unknown }>;
  if (sig.length === 1) {
    const task = taskOfOutput(String(sig[0]!.name));
    if (!task || task === 'multiclass') return undefined;
    return { task, output: String(sig[0]!.name), width: 1, names: [String(sig[0]!.name)] };
  }
  if (sig.length !== 2 || sig[0]!.name !== TASK_OUTPUT.multiclass || sig[1]!.name !== MULTICLASS_LABEL) return undefined;
  const classes = sig[0]!.classes;
  const valid = Array.isArray(classes) && classes.length >= 2 && (classes.every((c) => typeof c === 'string') || classes.every((c) => Number.isSafeInteger(c)));
  if (!valid) return undefined;
  return { task: 'multiclass', output: TASK_OUTPUT.multiclass, width: classes.length, classes: classes as ClassList, names: [TASK_OUTPUT.multiclass, MULTICLASS_LABEL] };
}

/** The task a stored output signature gives; undefined when it names no task's outputs. */
export function taskOfSignature(outputs: unknown): TaskKind | undefined {
  return answerOfSignature(outputs)?.task;
}

/** The features a stored input signature names: its inverse, for code that starts from a registered version. */
export { featuresOfInputs as featuresOfSignature } from '../ml/model-inputs';

export function signatureOf(features: FeatureSpec[], task: TaskKind = 'binary', classes?: ClassList) {
  const outputs =
    task === 'multiclass' && classes
      ? [
          { name: TASK_OUTPUT.multiclass, datatype: 'FP32', shape: [-1, classes.length], classes },
          { name: MULTICLASS_LABEL, datatype: integerClasses(classes) ? 'INT64' : 'BYTES', shape: [-1, 1] },
        ]
      : [{ name: outputOf(task), datatype: 'FP32', shape: [-1, 1] }];
  return {
    inputs: modelInputs(features).map((i) => ({ name: i.name, datatype: i.datatype, shape: [-1, 1], ...(i.derives ? { derives: i.derives } : {}) })),
    outputs,
  };
}
