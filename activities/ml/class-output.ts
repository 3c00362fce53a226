import type { Node, Tensor, ValueInfo } from '../../infra/onnx/model';
import type { ClassList } from './dataset';
import { MULTICLASS_LABEL, TASK_OUTPUT } from './task-output';

/**
 * The end of every multiclass graph, whatever the trainer: per-class scores [batch, k] through a
 * softmax into `probabilities`, and the most probable class looked up in the model's own class
 * list into `label` — so a client gets the class as the data spelled it, never an index it must
 * map back.
 */

/** The index of row i's most probable class in rows × k probabilities: the first of equal ones, as ONNX ArgMax. */
export function argmaxRow(probs: ArrayLike<number>, k: number, i: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + best]!) best = c;
  return best;
}

/** Whether the classes are integers (the label output is INT64) rather than strings. */
export const integerClasses = (classes: ClassList): classes is number[] => typeof classes[0] === 'number';

export function classOutputs(classes: ClassList): ValueInfo[] {
  return [
    { name: TASK_OUTPUT.multiclass, type: 'FLOAT', shape: ['batch', classes.length] },
    { name: MULTICLASS_LABEL, type: integerClasses(classes) ? 'INT64' : 'STRING', shape: ['batch', 1] },
  ];
}

/** Nodes and the class-list initializer that turn `scores` ([batch, k] logits) into the two outputs. */
export function classOutputNodes(scores: string, classes: ClassList): { nodes: Node[]; initializers: Tensor[] } {
  const values = integerClasses(classes) ? { type: 'INT64' as const, values: classes } : { type: 'STRING' as const, values: classes };
  return {
    initializers: [{ name: 'classes', dims: [classes.length], ...values } as Tensor],
    nodes: [
      { opType: 'Softmax', inputs: [scores], outputs: [TASK_OUTPUT.multiclass], name: 'softmax', attributes: { axis: { kind: 'int', value: 1 } } },
      // On the probabilities, not the logits: the first of equal float32 probabilities wins, as in every argmax over served or evaluated probabilities.
      { opType: 'ArgMax', inputs: [TASK_OUTPUT.multiclass], outputs: ['class_index'], name: 'argmax', attributes: { axis: { kind: 'int', value: 1 }, keepdims: { kind: 'int', value: 1 } } },
      { opType: 'Gather', inputs: ['classes', 'class_index'], outputs: [MULTICLASS_LABEL], name: 'class_label', attributes: { axis: { kind: 'int', value: 0 } } },
    ],
  };
}

/** Row-wise softmax of n×k logits (row-major) in float64: what the trainers' own scores are. */
export function softmaxRows(logits: Float64Array, k: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let at = 0; at < logits.length; at += k) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[at + c]!);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += out[at + c] = Math.exp(logits[at + c]! - max);
    for (let c = 0; c < k; c++) out[at + c]! /= sum;
  }
  return out;
}
