import { concatFeeds } from '../../workers/serving/batching';
import { decodeGrpcInfer } from '../../workers/serving/grpc-infer';
import { BadRequest, checkInfer, parseInfer, type InputSignature } from '../../workers/serving/oip';

/** A timestamp input (INT64 epoch seconds) through every transport: JSON, the binary extension, gRPC typed and raw contents, batching. */

const SIGNATURE: InputSignature[] = [
  { name: 'departed', datatype: 'INT64', shape: [-1, 1] },
  { name: 'miles', datatype: 'FP32', shape: [-1, 1] },
];
const STAMPS = [978_717_600, -86_400, 4_102_444_800];
const int64Bytes = (values: number[]) => {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigInt64LE(BigInt(v), i * 8));
  return b;
};
const json = (departed: unknown[]) => ({
  inputs: [
    { name: 'departed', datatype: 'INT64', shape: [departed.length, 1], data: departed },
    { name: 'miles', datatype: 'FP32', shape: [departed.length, 1], data: departed.map(() => 500) },
  ],
});
const rest = (body: unknown, binary?: Buffer) => parseInfer(body, SIGNATURE, 100, binary, { output: 'probability', width: 1 });
const fp32Bytes = (n: number) => Buffer.from(Float32Array.from({ length: n }, () => 500).buffer);
const empty = { bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [] };
const grpc = (over: Record<string, unknown>) => {
  const req = decodeGrpcInfer({ model_name: 'm', model_version: '', id: '', parameters: {}, outputs: [], raw_input_contents: [], ...over });
  return checkInfer(req.inputs, req.outputs, SIGNATURE, 100, req.id, { output: 'probability', width: 1 });
};

test('JSON, binary and gRPC (typed and raw) give the same int64 feed and logged values', () => {
  const fromJson = rest(json(STAMPS));
  const binary = rest(
    { inputs: [{ name: 'departed', datatype: 'INT64', shape: [3, 1], parameters: { binary_data_size: 24 } }, { name: 'miles', datatype: 'FP32', shape: [3, 1], parameters: { binary_data_size: 12 } }] },
    Buffer.concat([int64Bytes(STAMPS), fp32Bytes(3)]),
  );
  const typed = grpc({
    inputs: [
      { name: 'departed', datatype: 'INT64', shape: [3, 1], parameters: {}, contents: { ...empty, int64_contents: STAMPS } },
      { name: 'miles', datatype: 'FP32', shape: [3, 1], parameters: {}, contents: { ...empty, fp32_contents: [500, 500, 500] } },
    ],
  });
  const raw = grpc({
    inputs: [{ name: 'departed', datatype: 'INT64', shape: [3, 1], parameters: {}, contents: null }, { name: 'miles', datatype: 'FP32', shape: [3, 1], parameters: {}, contents: null }],
    raw_input_contents: [int64Bytes(STAMPS), fp32Bytes(3)],
  });
  for (const parsed of [fromJson, binary, typed, raw]) {
    expect(parsed.feeds.departed!.type).toBe('int64');
    expect(Array.from(parsed.feeds.departed!.data as BigInt64Array, Number)).toEqual(STAMPS);
    expect(parsed.columns.departed).toEqual(STAMPS);
  }
  const joined = concatFeeds([fromJson, raw]);
  expect(joined.departed!.type).toBe('int64');
  expect(Array.from(joined.departed!.data as BigInt64Array, Number)).toEqual([...STAMPS, ...STAMPS]);
});

test.each([
  ['an ISO string', '2001-01-05T18:00:00Z'],
  ['a missing value', null],
  ['a fraction', 1.5],
  ['an integer past 2^53', 2 ** 60],
])('%s as a timestamp is refused, naming the element and what it takes', (_what, value) => {
  expect(() => rest(json([978_717_600, value]))).toThrow(BadRequest);
  expect(() => rest(json([978_717_600, value]))).toThrow(/^input departed\[1\]: .* is not an INT64 integer \(departed is a timestamp in whole epoch seconds, UTC; it cannot be missing\)$/);
});

test('raw INT64 bytes must be 8 per element', () => {
  expect(() =>
    rest({ inputs: [{ name: 'departed', datatype: 'INT64', shape: [3, 1], parameters: { binary_data_size: 20 } }, { name: 'miles', datatype: 'FP32', shape: [3, 1], data: [1, 2, 3] }] }, int64Bytes(STAMPS).subarray(0, 20)),
  ).toThrow('input departed: binary_data_size is 20 bytes; 3 INT64 elements take 24');
  const huge = Buffer.alloc(8);
  huge.writeBigInt64LE(2n ** 60n);
  expect(() => rest({ inputs: [{ name: 'departed', datatype: 'INT64', shape: [1, 1], parameters: { binary_data_size: 8 } }, { name: 'miles', datatype: 'FP32', shape: [1, 1], data: [1] }] }, huge)).toThrow(
    /^input departed\[0\]: 1152921504606846976 is not an INT64 integer/,
  );
});
