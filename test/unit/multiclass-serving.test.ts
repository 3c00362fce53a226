import { answerOfSignature } from '../../activities/training/scoring';
import { answerTensors, encodeTensor, outputsOf, requestedOutputs } from '../../workers/serving/answer';
import { splitRows } from '../../workers/serving/batching';
import { feedbackProblem, tasksOf } from '../../workers/serving/feedback';
import { grpcAnswer } from '../../workers/serving/grpc-infer';
import type { LoadedVersion } from '../../workers/serving/models';
import { jsonAnswer } from '../../workers/serving/rest-infer';

/** What the server answers for a multiclass version, on every transport, and the labels its feedback takes. */

const SIGNATURE = [
  { name: 'probabilities', datatype: 'FP32', shape: [-1, 3], classes: ['bus', 'car', 'train'] },
  { name: 'label', datatype: 'BYTES', shape: [-1, 1] },
];
const shape = answerOfSignature(SIGNATURE)!;
// Two rows: car, then a tie between bus and train that the first one wins (as ONNX ArgMax).
const probs = Float32Array.of(0.2, 0.5, 0.3, 0.4, 0.2, 0.4);

test('a registered multiclass signature is what the server answers; anything short of it is served as nothing', () => {
  expect(shape).toMatchObject({ task: 'multiclass', output: 'probabilities', width: 3, classes: ['bus', 'car', 'train'], names: ['probabilities', 'label'] });
  expect(outputsOf(shape)).toEqual([
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
    { name: 'label', datatype: 'BYTES', shape: [-1, 1] },
  ]);
  expect(outputsOf(answerOfSignature([{ ...SIGNATURE[0], classes: [3, 5, 9] }, SIGNATURE[1]])!)[1]).toEqual({ name: 'label', datatype: 'INT64', shape: [-1, 1] });
  expect(answerOfSignature([{ name: 'probability', datatype: 'FP32' }])).toMatchObject({ task: 'binary', width: 1 });
  // No classes, one class, mixed classes, the outputs in another order: no task the server can tell.
  expect(answerOfSignature([{ ...SIGNATURE[0], classes: undefined }, SIGNATURE[1]])).toBeUndefined();
  expect(answerOfSignature([{ ...SIGNATURE[0], classes: ['only'] }, SIGNATURE[1]])).toBeUndefined();
  expect(answerOfSignature([{ ...SIGNATURE[0], classes: ['a', 1] }, SIGNATURE[1]])).toBeUndefined();
  expect(answerOfSignature([SIGNATURE[1], SIGNATURE[0]])).toBeUndefined();
  expect(answerOfSignature([{ name: 'probabilities', datatype: 'FP32' }])).toBeUndefined();
});

test('the answer: probabilities [rows, k] and each row\'s class, or only the outputs asked for', () => {
  const all = answerTensors(shape, 2, probs, requestedOutputs([], shape));
  expect(all.map((t) => [t.name, t.datatype, t.shape])).toEqual([
    ['probabilities', 'FP32', [2, 3]],
    ['label', 'BYTES', [2, 1]],
  ]);
  expect(all[1]!.data).toEqual(['car', 'bus']);
  expect(answerTensors(shape, 2, probs, requestedOutputs(['label'], shape)).map((t) => t.name)).toEqual(['label']);
  expect(() => requestedOutputs(['probability'], shape)).toThrow('unknown output "probability"; the model gives probabilities, label');
  expect(() => requestedOutputs(['label', 'label'], shape)).toThrow('an output is asked for twice');
  // The JSON answer is what JSON.stringify writes for it.
  const head = { model_name: 'modes', model_version: '2', id: 'r1' };
  expect(jsonAnswer(head, all)).toBe(
    JSON.stringify({
      ...head,
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [2, 3], data: Array.from(probs) },
        { name: 'label', datatype: 'BYTES', shape: [2, 1], data: ['car', 'bus'] },
      ],
    }),
  );
});

test('binary tensor data: BYTES as 4-byte little-endian lengths before the UTF-8, INT64 as 8 little-endian bytes', () => {
  const bytes = encodeTensor({ name: 'label', datatype: 'BYTES', shape: [2, 1], data: ['car', 'vélo'] });
  expect(bytes.readUInt32LE(0)).toBe(3);
  expect(bytes.subarray(4, 7).toString('utf8')).toBe('car');
  expect(bytes.readUInt32LE(7)).toBe(5);
  expect(bytes.subarray(11).toString('utf8')).toBe('vélo');
  const ints = encodeTensor({ name: 'label', datatype: 'INT64', shape: [2, 1], data: [-1, 2 ** 40] });
  expect([ints.readBigInt64LE(0), ints.readBigInt64LE(8)]).toEqual([-1n, 2n ** 40n]);
});

test('gRPC: each output in the contents field of its datatype, or in raw_output_contents as the binary extension encodes it', () => {
  const result = (outputs: string[], classes: Array<string | number> = ['bus', 'car', 'train']) => ({
    target: { ...answerOfSignature([{ ...SIGNATURE[0], classes }, { name: 'label', datatype: 'BYTES' }])!, version: 2 } as unknown as LoadedVersion,
    parsed: { rows: 2, feeds: {}, columns: {}, outputs },
    requestId: 'r1',
    probs,
  });
  const typed = grpcAnswer('modes', result(['probabilities', 'label']), false);
  expect(typed.outputs).toEqual([
    { name: 'probabilities', datatype: 'FP32', shape: [2, 3], contents: { fp32_contents: Array.from(probs) } },
    { name: 'label', datatype: 'BYTES', shape: [2, 1], contents: { bytes_contents: [Buffer.from('car'), Buffer.from('bus')] } },
  ]);
  expect(grpcAnswer('modes', result(['label'], [4, 5, 6]), false).outputs).toEqual([{ name: 'label', datatype: 'INT64', shape: [2, 1], contents: { int64_contents: [5, 4] } }]);
  const raw = grpcAnswer('modes', result(['label', 'probabilities']), true);
  expect(raw.outputs.map((o) => o.name)).toEqual(['probabilities', 'label']);
  expect(raw.raw_output_contents.map((b) => b.length)).toEqual([24, 4 + 3 + 4 + 3]);
});

test('a batch of multiclass requests splits k scores per row', () => {
  const out = Float32Array.from({ length: 5 * 3 }, (_, i) => i);
  const split = splitRows(out, [2, 3], 3)!;
  expect(split.map((s) => Array.from(s))).toEqual([
    [0, 1, 2, 3, 4, 5],
    [6, 7, 8, 9, 10, 11, 12, 13, 14],
  ]);
  expect(splitRows(out, [2, 2], 3)).toBeUndefined();
});

test('feedback for a multiclass model takes one of its classes, naming a class it never saw', () => {
  const takers = tasksOf([SIGNATURE, [{ ...SIGNATURE[0], classes: [1, 2] }, { name: 'label', datatype: 'INT64', shape: [-1, 1] }]]);
  expect(takers).toEqual([
    { task: 'multiclass', classes: ['bus', 'car', 'train'] },
    { task: 'multiclass', classes: [1, 2] },
  ]);
  const labels = (...ys: Array<number | string | boolean>) => ys.map((label, i) => ({ request_id: `r${i}`, label }));
  expect(feedbackProblem(labels('car', 'train', 2), takers, true)).toBeUndefined();
  expect(feedbackProblem(labels('car', 'plane'), takers, true)).toBe(
    'invalid feedback: labels.1.label: "plane" is not a label this model takes; expected one of its classes "bus", "car", "train" (multiclass) or one of its classes 1, 2 (multiclass)',
  );
  // A class is the value the data had: the string "2" is not the integer 2.
  expect(feedbackProblem(labels('2'), [takers[1]!], false)).toMatch(/^invalid feedback: label: "2" is not a label/);
});
