import { decodeGrpcInfer } from '../../workers/serving/grpc-infer';
import { checkInfer, type InputSignature } from '../../workers/serving/oip';
import { encodeFp32 } from '../../workers/serving/raw-tensors';

/** gRPC ModelInfer messages, as @grpc/proto-loader decodes them (every field present), to the shared checks. */

const SIGNATURE: InputSignature[] = [
  { name: 'hour', datatype: 'FP32', shape: [-1, 1] },
  { name: 'origin', datatype: 'BYTES', shape: [-1, 1] },
];
const empty = { bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [] };
const typed = (over: Record<string, unknown> = {}) => ({
  model_name: 'm',
  model_version: '',
  id: '',
  parameters: {},
  inputs: [
    { name: 'hour', datatype: 'FP32', shape: [2, 1], parameters: {}, contents: { ...empty, fp32_contents: [7, 18] } },
    { name: 'origin', datatype: 'BYTES', shape: [2, 1], parameters: {}, contents: { ...empty, bytes_contents: [Buffer.from('ATL'), Buffer.from('ORD')] } },
  ],
  outputs: [],
  raw_input_contents: [],
  ...over,
});
const lengthPrefixed = (...values: string[]) => Buffer.concat(values.flatMap((v) => [Buffer.from([v.length, 0, 0, 0]), Buffer.from(v)]));
const raw = (hour: Buffer, over: Record<string, unknown> = {}) =>
  typed({ inputs: typed().inputs.map((t) => ({ ...t, contents: null })), raw_input_contents: [hour, lengthPrefixed('ATL', 'ORD')], ...over });
const check = (message: unknown) => {
  const req = decodeGrpcInfer(message);
  return checkInfer(req.inputs, req.outputs, SIGNATURE, 100, req.id, { output: 'probability', width: 1 });
};

test('typed contents and raw_input_contents give the same feeds; raw is remembered for the answer', () => {
  expect(check(typed()).columns).toEqual({ hour: [7, 18], origin: ['ATL', 'ORD'] });
  expect(check(raw(encodeFp32(Float32Array.of(7, 18)))).columns).toEqual({ hour: [7, 18], origin: ['ATL', 'ORD'] });
  expect(decodeGrpcInfer(typed()).raw).toBe(false);
  expect(decodeGrpcInfer(raw(Buffer.alloc(8))).raw).toBe(true);
  expect(decodeGrpcInfer(typed({ model_version: '3', id: 'r1' }))).toMatchObject({ model: 'm', version: 3, id: 'r1' });
});

test.each([
  ['a raw entry of the wrong size', () => raw(Buffer.alloc(12)), 'input hour: raw_input_contents[0] is 12 bytes; 2 FP32 elements take 8'],
  ['raw entries fewer than the inputs', () => raw(Buffer.alloc(8), { raw_input_contents: [Buffer.alloc(8)] }), 'raw_input_contents has 1 entries for 2 inputs'],
  ['raw and typed contents both', () => typed({ raw_input_contents: [Buffer.alloc(8), Buffer.alloc(0)] }), 'inputs[0] (hour): contents and raw_input_contents cannot both be given'],
  ['FP32 values in the wrong contents field', () => typed({ inputs: [{ ...typed().inputs[0]!, contents: { ...empty, fp64_contents: [7, 18] } }, typed().inputs[1]] }), 'inputs[0] (hour): contents.fp64_contents is given; FP32 elements go in contents.fp32_contents'],
  ['too few elements', () => typed({ inputs: [{ ...typed().inputs[0]!, contents: { ...empty, fp32_contents: [7] } }, typed().inputs[1]] }), 'input hour: 1 elements for shape [2, 1] (2 expected)'],
  ['a NaN', () => typed({ inputs: [{ ...typed().inputs[0]!, contents: { ...empty, fp32_contents: [7, NaN] } }, typed().inputs[1]] }), 'input hour[1]: NaN is not a finite FP32 number'],
  ['a negative dimension', () => typed({ inputs: [{ ...typed().inputs[0]!, shape: [-1, 1] }, typed().inputs[1]] }), 'inputs.0.shape.0'],
  ['no model name', () => typed({ model_name: '' }), 'model_name is required'],
])('%s is refused naming the field', (_name, message, text) => {
  let caught: unknown;
  try {
    check(message());
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({ status: 400, message: expect.stringContaining(text) });
});

test('a version that is not a number names no version: 404', () => {
  expect(() => decodeGrpcInfer(typed({ model_version: 'latest' }))).toThrow(expect.objectContaining({ status: 404 }));
});
