import { argmaxRow } from '../../activities/ml/class-output';
import type { ClassList } from '../../activities/ml/dataset';
import { MULTICLASS_LABEL } from '../../activities/ml/task-output';
import { BadRequest } from './bad-request';
import { encodeFp32 } from './raw-tensors';

/**
 * What a version answers, the same for REST (JSON or binary), gRPC and the model metadata: a
 * binary or regression model one FP32 [rows, 1] output; a multiclass model `probabilities`
 * [rows, k] and `label`, the likeliest class as the data spells it — the graph's argmax over
 * the same float32 probabilities (the first of equal ones, as its ArgMax), so one onnxruntime
 * run per batch gives both.
 */

export interface AnswerShape {
  /** The scores output the session is run for: `probability`, `prediction` or `probabilities`. */
  output: string;
  /** Scores per row: 1, or k for a multiclass model. */
  width: number;
  /** Multiclass: the classes, in the order of the probabilities' columns. */
  classes?: ClassList;
}

export type AnswerDatatype = 'FP32' | 'BYTES' | 'INT64';

export interface AnswerTensor {
  name: string;
  datatype: AnswerDatatype;
  shape: number[];
  data: Float32Array | string[] | number[];
}

/** The outputs a version gives, with their datatypes and per-row shapes (-1 rows): for the metadata and for checking a request's `outputs`. */
export function outputsOf(v: AnswerShape): Array<{ name: string; datatype: AnswerDatatype; shape: number[] }> {
  if (!v.classes) return [{ name: v.output, datatype: 'FP32', shape: [-1, 1] }];
  return [
    { name: v.output, datatype: 'FP32', shape: [-1, v.width] },
    { name: MULTICLASS_LABEL, datatype: typeof v.classes[0] === 'number' ? 'INT64' : 'BYTES', shape: [-1, 1] },
  ];
}

/** Each row's class from its probabilities. */
export function classLabels(scores: Float32Array, classes: ClassList): string[] | number[] {
  const k = classes.length;
  const rows = scores.length / k;
  return Array.from({ length: rows }, (_, i) => classes[argmaxRow(scores, k, i)]!) as string[] | number[];
}

/** The requested outputs (all when the request names none), each checked against what the version gives. */
export function requestedOutputs(asked: readonly string[], v: AnswerShape): string[] {
  const given = outputsOf(v).map((o) => o.name);
  for (const o of asked) if (!given.includes(o)) throw new BadRequest(`unknown output ${JSON.stringify(o)}; the model gives ${given.join(', ')}`);
  if (new Set(asked).size !== asked.length) throw new BadRequest('an output is asked for twice');
  return asked.length ? [...asked] : given;
}

/** The answer's tensors for `rows` scored rows: those asked for, in the order the version gives them. */
export function answerTensors(v: AnswerShape, rows: number, scores: Float32Array, names: readonly string[]): AnswerTensor[] {
  return outputsOf(v)
    .filter((o) => names.includes(o.name))
    .map((o) => ({ name: o.name, datatype: o.datatype, shape: [rows, o.shape[1]!], data: o.name === v.output ? scores : classLabels(scores, v.classes!) }));
}

/** A tensor's data as the binary extension and gRPC's raw contents carry it: FP32 and INT64 little-endian, BYTES as 4-byte little-endian lengths, each before its UTF-8 bytes. */
export function encodeTensor(t: AnswerTensor): Buffer {
  if (t.datatype === 'FP32') return encodeFp32(t.data as Float32Array);
  if (t.datatype === 'INT64') {
    const out = Buffer.alloc(t.data.length * 8);
    (t.data as number[]).forEach((v, i) => out.writeBigInt64LE(BigInt(v), i * 8));
    return out;
  }
  const parts = (t.data as string[]).flatMap((s) => {
    const bytes = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(bytes.length);
    return [len, bytes];
  });
  return Buffer.concat(parts);
}

/** A tensor's data in JSON: FP32 as JSON.stringify writes numbers (null when not finite), without building an array first. */
export function jsonData(t: AnswerTensor): string {
  if (t.datatype !== 'FP32') return JSON.stringify(t.data);
  const d = t.data as Float32Array;
  let out = '';
  for (let i = 0; i < d.length; i++) {
    const p = d[i]!;
    out += (i ? ',' : '') + (Number.isFinite(p) ? String(p) : 'null');
  }
  return `[${out}]`;
}
