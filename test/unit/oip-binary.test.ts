import { binaryInputs, encodeBinaryResponse, splitBinaryBody } from '../../workers/serving/oip-binary';
import { parseInfer, type InputSignature } from '../../workers/serving/oip';
import { decodeRaw, encodeFp32 } from '../../workers/serving/raw-tensors';

/** The REST binary tensor data extension's byte accounting, and the raw tensor layout it shares with gRPC. */

const fp32 = (...values: number[]) => encodeFp32(Float32Array.from(values));
const strings = (...values: string[]) =>
  Buffer.concat(
    values.flatMap((v) => {
      const b = Buffer.from(v, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, b];
    }),
  );
const body = (header: unknown, ...parts: Buffer[]) => {
  const json = Buffer.from(JSON.stringify(header));
  return { bytes: Buffer.concat([json, ...parts]), length: String(json.length) };
};

const SIGNATURE: InputSignature[] = [
  { name: 'hour', datatype: 'FP32', shape: [-1, 1] },
  { name: 'origin', datatype: 'BYTES', shape: [-1, 1] },
];

describe('splitBinaryBody', () => {
  test('the first Inference-Header-Content-Length bytes are the JSON, the rest the tensor bytes', () => {
    const b = body({ inputs: [] }, Buffer.from([1, 2, 3]));
    const { json, binary } = splitBinaryBody(b.bytes, b.length);
    expect(json).toEqual({ inputs: [] });
    expect([...binary]).toEqual([1, 2, 3]);
  });

  test.each([
    ['not a number', 'abc', /"abc" is not a byte count/],
    ['negative', '-4', /is not a byte count/],
    ['zero', '0', /is 0; the JSON inference header is required/],
    ['past the body', '1000', /says the JSON header is 1000 bytes, but the body has only 16/],
    ['cutting the JSON', '10', /first 10 bytes .* is not valid JSON/],
  ])('a bad header length (%s) is a 400 saying so', (_name, length, pattern) => {
    const b = body({ inputs: [] }, Buffer.from([1, 2, 3]));
    let caught: unknown;
    try {
      splitBinaryBody(b.bytes, length);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ status: 400, message: expect.stringMatching(pattern) });
  });
});

describe('binaryInputs', () => {
  test('inputs with binary_data_size take their bytes in order; JSON inputs take none', () => {
    const binary = Buffer.from([1, 2, 3, 4, 5, 6]);
    const out = binaryInputs(
      [
        { name: 'a', size: 2, hasData: false },
        { name: 'b', hasData: true },
        { name: 'c', size: 4, hasData: false },
      ],
      binary,
    );
    expect(out.map((b) => (b ? [...b] : undefined))).toEqual([[1, 2], undefined, [3, 4, 5, 6]]);
  });

  test.each([
    ['more sizes than bytes', [{ name: 'a', size: 4, hasData: false }, { name: 'b', size: 4, hasData: false }], Buffer.alloc(6), /input b: binary_data_size 4 goes past the end of the body \(2 bytes left/],
    ['bytes left over', [{ name: 'a', size: 4, hasData: false }], Buffer.alloc(6), /has 6 bytes after the JSON header, but the inputs' binary_data_size add up to 4/],
    ['data and a size', [{ name: 'a', size: 4, hasData: true }], Buffer.alloc(4), /input a: both `data` and `parameters.binary_data_size`/],
    ['neither', [{ name: 'a', hasData: false }], Buffer.alloc(0), /input a: no data/],
    ['a size in a JSON request', [{ name: 'a', size: 4, hasData: false }], undefined, /input a: parameters.binary_data_size needs a binary request/],
  ])('%s is refused', (_name, inputs, binary, pattern) => {
    expect(() => binaryInputs(inputs, binary)).toThrow(pattern);
  });
});

describe('raw tensor bytes', () => {
  test('FP32 is little-endian, 4 bytes an element', () => {
    const bytes = fp32(1.5, -2, 3.25);
    expect([...bytes.subarray(0, 4)]).toEqual([0, 0, 0xc0, 0x3f]);
    expect(decodeRaw('x', 'FP32', bytes, 3, 'raw_input_contents[0]')).toEqual([1.5, -2, 3.25]);
  });

  test('an FP32 size that does not match the element count names the input and the field', () => {
    expect(() => decodeRaw('hour', 'FP32', fp32(1, 2, 3), 2, 'raw_input_contents[0]')).toThrow('input hour: raw_input_contents[0] is 12 bytes; 2 FP32 elements take 8');
  });

  test('BYTES elements are length-prefixed UTF-8; a cut or non-UTF-8 element is refused', () => {
    expect(decodeRaw('o', 'BYTES', strings('ATL', '', 'Zürich'), 3, 'f')).toEqual(['ATL', '', 'Zürich']);
    expect(() => decodeRaw('o', 'BYTES', strings('ATL').subarray(0, 5), 1, 'f')).toThrow(/input o: f: element 0 says 3 bytes, 1 are left/);
    expect(() => decodeRaw('o', 'BYTES', Buffer.concat([strings('ATL'), Buffer.from([1, 0])]), 2, 'f')).toThrow(/ends inside the length prefix of element 1/);
    expect(() => decodeRaw('o', 'BYTES', Buffer.from([1, 0, 0, 0, 0xff]), 1, 'f')).toThrow(/o\[0\]: BYTES element is not valid UTF-8/);
  });

  test('encodeBinaryResponse puts the JSON header first and says its length', () => {
    const { body: out, headerLength } = encodeBinaryResponse({ a: 1 }, [fp32(0.5)]);
    expect(headerLength).toBe('{"a":1}'.length);
    expect(JSON.parse(out.subarray(0, headerLength).toString())).toEqual({ a: 1 });
    expect(out.subarray(headerLength).readFloatLE(0)).toBe(0.5);
  });
});

describe('parseInfer with binary inputs', () => {
  const header = (hourSize: number, originSize: number, extra: Record<string, unknown> = {}) => ({
    inputs: [
      { name: 'hour', datatype: 'FP32', shape: [2, 1], parameters: { binary_data_size: hourSize } },
      { name: 'origin', datatype: 'BYTES', shape: [2, 1], parameters: { binary_data_size: originSize } },
    ],
    ...extra,
  });

  test('binary and JSON requests for the same rows give the same feeds', () => {
    const origin = strings('ATL', 'ORD');
    const b = splitBinaryBody(body(header(8, origin.length), fp32(7, 18), origin).bytes, String(JSON.stringify(header(8, origin.length)).length));
    const binary = parseInfer(b.json, SIGNATURE, 100, b.binary, { output: 'probability', width: 1 });
    const json = parseInfer({ inputs: [{ name: 'hour', datatype: 'FP32', shape: [2, 1], data: [7, 18] }, { name: 'origin', datatype: 'BYTES', shape: [2, 1], data: ['ATL', 'ORD'] }] }, SIGNATURE, 100, undefined, { output: 'probability', width: 1 });
    expect(binary.columns).toEqual({ hour: [7, 18], origin: ['ATL', 'ORD'] });
    expect(binary.columns).toEqual(json.columns);
    expect(binary.binaryOutputs).toEqual([]);
  });

  test('binary_data_size must be the element count × 4 for FP32', () => {
    const origin = strings('ATL', 'ORD');
    expect(() => parseInfer(header(12, origin.length), SIGNATURE, 100, Buffer.concat([fp32(1, 2, 3), origin]), { output: 'probability', width: 1 })).toThrow('input hour: binary_data_size is 12 bytes; 2 FP32 elements take 8');
  });

  test('the datatype is checked before the bytes are read', () => {
    const h = header(8, 8);
    h.inputs[0]!.datatype = 'INT64';
    expect(() => parseInfer(h, SIGNATURE, 100, Buffer.alloc(16), { output: 'probability', width: 1 })).toThrow('input hour: datatype INT64, expected FP32');
  });

  test('a NaN or infinity in binary FP32 is refused like in JSON', () => {
    const origin = strings('ATL', 'ORD');
    expect(() => parseInfer(header(8, origin.length), SIGNATURE, 100, Buffer.concat([fp32(1, NaN), origin]), { output: 'probability', width: 1 })).toThrow('input hour[1]: NaN is not a finite FP32 number');
    expect(() => parseInfer(header(8, origin.length), SIGNATURE, 100, Buffer.concat([fp32(Infinity, 1), origin]), { output: 'probability', width: 1 })).toThrow('input hour[0]: Infinity is not a finite FP32 number');
  });

  test('binary output: asked per output or for the whole request; the output’s own flag wins', () => {
    const origin = strings('ATL', 'ORD');
    const bytes = Buffer.concat([fp32(1, 2), origin]);
    const parse = (extra: Record<string, unknown>) => parseInfer(header(8, origin.length, extra), SIGNATURE, 100, bytes, { output: 'probability', width: 1 }).binaryOutputs.length > 0;
    expect(parse({ outputs: [{ name: 'probability', parameters: { binary_data: true } }] })).toBe(true);
    expect(parse({ parameters: { binary_data_output: true } })).toBe(true);
    expect(parse({ parameters: { binary_data_output: true }, outputs: [{ name: 'probability', parameters: { binary_data: false } }] })).toBe(false);
    expect(parse({})).toBe(false);
    expect(() => parse({ parameters: { binary_data_output: 'yes' } })).toThrow(/parameters.binary_data_output/);
    expect(() => parse({ outputs: [{ name: 'probability', parameters: { binary_data: 1 } }] })).toThrow(/outputs.0.parameters.binary_data/);
  });
});
