import * as ort from 'onnxruntime-node';
import { withDuckDb } from '../../activities/data/duck';
import type { FeatureSpec } from '../../activities/ml/dataset';
import { deriveTime, epochSeconds, featuresOfInputs, modelInputs } from '../../activities/ml/model-inputs';
import { withTimeInputs } from '../../activities/ml/time-graph';
import { serializeModel } from '../../infra/onnx/model';

// Hour, day of week and month of `date`, and one plain feature between them: the trainer's graph takes them all as FLOAT.
const FEATURES: FeatureSpec[] = [
  { name: 'hour', kind: 'numeric', column: 'date', transform: 'hour' },
  { name: 'distance', kind: 'numeric' },
  { name: 'dow', kind: 'numeric', column: 'date', transform: 'dayofweek' },
  { name: 'month', kind: 'numeric', column: 'date', transform: 'month' },
];

/** A trainer-like graph that passes its FLOAT inputs through: out = [hour, distance, dow, month]. */
function passThrough(): Buffer {
  return serializeModel({
    graphName: 'pass',
    inputs: FEATURES.map((f) => ({ name: f.name, type: 'FLOAT', shape: ['batch', 1] })),
    outputs: [{ name: 'out', type: 'FLOAT', shape: ['batch', 4] }],
    nodes: [{ opType: 'Concat', inputs: FEATURES.map((f) => f.name), outputs: ['out'], attributes: { axis: { kind: 'int', value: 1 } } }],
  });
}

// Epochs around every boundary that breaks naive arithmetic: before 1970, leap days, centuries, 2038, hour edges.
const STAMPS = [
  '1900-02-28T23:59:59Z', '1900-03-01T00:00:00Z', '1969-12-31T23:59:59Z', '1970-01-01T00:00:00Z', '2000-02-29T12:00:00Z',
  '2000-12-31T23:00:00Z', '2024-02-29T23:59:59Z', '2024-03-01T00:00:00Z', '2038-01-19T03:14:08Z', '2100-03-01T01:00:00Z',
].map(epochSeconds);

function sample(n: number, seed: number): number[] {
  let x = seed;
  const out: number[] = [];
  // ±150 years around 1970, to the second.
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(Math.floor((x / 2147483648 - 0.5) * 2 * 150 * 365.25 * 86_400));
  }
  return out;
}

test('a model takes one INT64 input per timestamp column; its signature gives the derived features back', () => {
  const inputs = modelInputs(FEATURES);
  expect(inputs).toEqual([
    { name: 'date', datatype: 'INT64', derives: [{ name: 'hour', transform: 'hour' }, { name: 'dow', transform: 'dayofweek' }, { name: 'month', transform: 'month' }] },
    { name: 'distance', datatype: 'FP32' },
  ]);
  expect(featuresOfInputs(inputs).map((f) => f.name).sort()).toEqual(['distance', 'dow', 'hour', 'month']);
  expect(featuresOfInputs(inputs).find((f) => f.name === 'dow')).toEqual({ name: 'dow', kind: 'numeric', column: 'date', transform: 'dayofweek' });
});

test('the graph derives hour, day of week and month from epoch seconds exactly as DuckDB does from the timestamp', async () => {
  const model = withTimeInputs(passThrough(), FEATURES);
  const stamps = [...STAMPS, ...sample(5000, 7)];
  const session = await ort.InferenceSession.create(model);
  expect([...session.inputNames].sort()).toEqual(['date', 'distance']);
  const out = await session.run({
    date: new ort.Tensor('int64', BigInt64Array.from(stamps, BigInt), [stamps.length, 1]),
    distance: new ort.Tensor('float32', Float32Array.from(stamps, (_, i) => i), [stamps.length, 1]),
  });
  await session.release();
  const got = out.out!.data as Float32Array;
  const reference = await withDuckDb(async (c) =>
    (await c.runAndReadAll(`SELECT hour(t)::INT AS h, dayofweek(t)::INT AS d, month(t)::INT AS m FROM (SELECT make_timestamp(unnest([${stamps.join(',')}]::BIGINT[]) * 1000000) AS t)`)).getRows(),
  );
  const mismatches: string[] = [];
  stamps.forEach((e, i) => {
    const [h, d, m] = reference[i]!.map(Number);
    const row = [got[i * 4]!, got[i * 4 + 1]!, got[i * 4 + 2]!, got[i * 4 + 3]!];
    if (row[0] !== h || row[1] !== i || row[2] !== d || row[3] !== m) mismatches.push(`${new Date(e * 1000).toISOString()}: graph ${row} duckdb ${[h, i, d, m]}`);
    if (deriveTime('hour', e) !== h || deriveTime('dayofweek', e) !== d || deriveTime('month', e) !== m) mismatches.push(`${e}: deriveTime differs`);
  });
  expect(mismatches.slice(0, 5)).toEqual([]);
});

test('a graph without the derived feature as an input is refused by name; without derived features the model stays as it is', () => {
  const other = serializeModel({
    graphName: 'x',
    inputs: [{ name: 'distance', type: 'FLOAT', shape: ['batch', 1] }],
    outputs: [{ name: 'out', type: 'FLOAT', shape: ['batch', 1] }],
    nodes: [{ opType: 'Identity', inputs: ['distance'], outputs: ['out'] }],
  });
  expect(() => withTimeInputs(other, FEATURES)).toThrow(/the graph has no input hour/);
  expect(withTimeInputs(other, [{ name: 'distance', kind: 'numeric' }]).equals(other)).toBe(true);
});
