import { inferRequest, isInferRequest } from '../../workers/serving/oip-form';
import { jsonAnswer } from '../../workers/serving/rest-infer';

/**
 * The hand check of a REST inference request's form says yes only to what the zod schema
 * accepts unchanged: everything else goes to zod, which words the refusal. And the answer written
 * by hand is the one JSON.stringify would write.
 */

const tensor = { name: 'hour', datatype: 'FP32', shape: [2, 1], data: [1, 2] };
const valid: unknown[] = [
  { inputs: [tensor] },
  { id: 'r-1', inputs: [tensor, { name: 'origin', datatype: 'BYTES', shape: [2, 1], data: ['A', 'B'] }] },
  { inputs: [{ ...tensor, data: undefined, parameters: { binary_data_size: 8 } }] },
  { inputs: [{ ...tensor, parameters: { other: 'kept' } }], parameters: { binary_data_output: true, extra: 1 } },
  { inputs: [tensor], outputs: [{ name: 'probability', parameters: { binary_data: false } }] },
  { inputs: [{ ...tensor, shape: [0] }], id: '' },
];
const invalid: unknown[] = [
  null,
  [],
  'inputs',
  {},
  { inputs: [] },
  { inputs: Array.from({ length: 1025 }, () => tensor) },
  { inputs: [tensor], priority: 'high' },
  { inputs: [tensor], id: 7 },
  { inputs: [tensor], id: 'x'.repeat(257) },
  { inputs: [tensor], parameters: [] },
  { inputs: [tensor], parameters: { binary_data_output: 'yes' } },
  { inputs: [{ ...tensor, name: '' }] },
  { inputs: [{ ...tensor, name: 'x'.repeat(257) }] },
  { inputs: [{ ...tensor, datatype: '' }] },
  { inputs: [{ ...tensor, datatype: 'X'.repeat(17) }] },
  { inputs: [{ ...tensor, shape: [] }] },
  { inputs: [{ ...tensor, shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] }] },
  { inputs: [{ ...tensor, shape: [1.5, 1] }] },
  { inputs: [{ ...tensor, shape: [-1, 1] }] },
  { inputs: [{ ...tensor, shape: [1_000_000_001, 1] }] },
  { inputs: [{ ...tensor, shape: ['2', 1] }] },
  { inputs: [{ ...tensor, data: 'AB' }] },
  { inputs: [{ ...tensor, extra: true }] },
  { inputs: [{ ...tensor, parameters: { binary_data_size: -1 } }] },
  { inputs: [{ ...tensor, parameters: { binary_data_size: 2 ** 31 + 1 } }] },
  { inputs: [{ ...tensor, parameters: 'x' }] },
  { inputs: [tensor], outputs: {} },
  { inputs: [tensor], outputs: [{ name: 3 }] },
  { inputs: [tensor], outputs: [{ name: 'p', extra: 1 }] },
  { inputs: [tensor], outputs: [{ name: 'p', parameters: { binary_data: 1 } }] },
  JSON.parse('{"inputs": [{"name": "hour", "datatype": "FP32", "shape": [1, 1], "data": [1]}], "__proto__": {"x": 1}}'),
];

test.each(valid.map((b) => [JSON.stringify(b), b]))('accepted as zod accepts it, unchanged: %s', (_text, body) => {
  expect(isInferRequest(body)).toBe(true);
  const z = inferRequest.safeParse(body);
  expect(z.success).toBe(true);
  expect(z.data).toEqual(body);
});

test.each(invalid.map((b) => [JSON.stringify(b)?.slice(0, 120), b]))('left to zod, which refuses it: %s', (_text, body) => {
  expect(isInferRequest(body)).toBe(false);
  expect(inferRequest.safeParse(body).success).toBe(false);
});

test('the JSON answer is what JSON.stringify writes for it', () => {
  const head = { model_name: 'flights', model_version: '3', id: 'ïd "quoted" \\ ✈' };
  const probs = Float32Array.of(0.1, 1 / 3, 0, -0, 1e-8, 0.99999994, NaN, Infinity);
  const tensor = (name: string) => [{ name, datatype: 'FP32' as const, shape: [probs.length, 1], data: probs }];
  expect(jsonAnswer(head, tensor('probability'))).toBe(JSON.stringify({ ...head, outputs: [{ name: 'probability', datatype: 'FP32', shape: [probs.length, 1], data: Array.from(probs) }] }));
  expect(jsonAnswer(head, tensor('prediction'))).toBe(JSON.stringify({ ...head, outputs: [{ name: 'prediction', datatype: 'FP32', shape: [probs.length, 1], data: Array.from(probs) }] }));
});
