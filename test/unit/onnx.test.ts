import * as ort from 'onnxruntime-node';
import { logisticModel, serializeModel } from '../../infra/onnx/model';
import { ProtoWriter } from '../../infra/onnx/protobuf';

test('varints follow the protobuf wire format, negatives as 10-byte two\'s complement', () => {
  expect([...new ProtoWriter().varint(1, 300).finish()]).toEqual([0x08, 0xac, 0x02]);
  expect([...new ProtoWriter().varint(1, -1).finish()]).toEqual([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  expect([...new ProtoWriter().string(2, 'hi').finish()]).toEqual([0x12, 0x02, 0x68, 0x69]);
});

test('a logistic model built here runs in onnxruntime-node with the expected outputs', async () => {
  const w = [0.5, -1.25, 2];
  const b = 0.1;
  const session = await ort.InferenceSession.create(logisticModel(w, b));
  expect(session.inputNames).toEqual(['x']);
  expect(session.outputNames).toEqual(['probability']);
  const xs = [
    [1, 2, 0.5],
    [0, 0, 0],
    [-3, 4, 10],
  ];
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(xs.flat()), [3, 3]) });
  const got = Array.from(out.probability!.data as Float32Array);
  const expected = xs.map((x) => 1 / (1 + Math.exp(-(x.reduce((s, v, i) => s + v * w[i]!, 0) + b))));
  got.forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 6));
  await session.release();
});

test('ONNX-ML operators and string tensors serialise: a LabelEncoder maps categories', async () => {
  const model = serializeModel({
    graphName: 'encode',
    inputs: [{ name: 'origin', type: 'STRING', shape: ['batch'] }],
    outputs: [{ name: 'code', type: 'INT64', shape: ['batch'] }],
    nodes: [
      {
        opType: 'LabelEncoder',
        domain: 'ai.onnx.ml',
        inputs: ['origin'],
        outputs: ['code'],
        attributes: {
          keys_strings: { kind: 'strings', value: ['ORD', 'SFO', 'JFK'] },
          values_int64s: { kind: 'ints', value: [0, 1, 2] },
          default_int64: { kind: 'int', value: -1 },
        },
      },
    ],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
    metadata: { trainer: 'test' },
  });
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ origin: new ort.Tensor('string', ['JFK', 'LAX', 'ORD'], [3]) });
  expect(Array.from(out.code!.data as BigInt64Array).map(Number)).toEqual([2, -1, 0]);
  await session.release();
});
