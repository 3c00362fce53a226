import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { computeStatistics, inferSchema, validateSpan } from '../../activities/data/validate';
import { psi } from '../../activities/ml/drift';
import { PRESETS } from '../../workflows/contracts/training-spec';

/** Statistics, schema checks and drift on the real flights months, computed by DuckDB. */

const task = PRESETS['flights-delay'];
const month = (m: number, extra = '') => `(SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = ${m} ${extra})`;

test('statistics in two scans: counts, ranges, deciles, value counts and the label rate', async () => {
  const stats = await withDuckDb((c) => computeStatistics(c, month(1), { label: task.label }));
  expect(stats.rows).toBe(508_239);
  const distance = stats.columns.find((c) => c.name === 'distance')!;
  expect(distance.kind).toBe('numeric');
  expect(distance.nulls).toBe(0);
  expect(distance.edges!.length).toBeGreaterThan(5);
  expect(distance.selfHistogram!.reduce((a, b) => a + b, 0)).toBe(508_239);
  const origin = stats.columns.find((c) => c.name === 'origin')!;
  expect(Object.values(origin.categories!).reduce((a, b) => a + b, 0)).toBe(508_239);
  expect(stats.label!.positives! / stats.label!.labelled).toBeCloseTo(0.205, 3);
});

test('a later span: schema anomalies are warnings, drift against the previous span is measured', async () => {
  const [jan, jun] = await withDuckDb(async (c) => {
    const jan = await computeStatistics(c, month(1), { label: task.label });
    return [jan, await computeStatistics(c, month(6, "AND origin <> 'ATL'"), { label: task.label, previous: jan })] as const;
  });
  const report = validateSpan({ stats: jun, schema: inferSchema(jan), previous: jan, features: task.features, label: task.label, splitColumn: 'date' });
  expect(report.ok).toBe(true);
  const delay = report.drift.find((d) => d.column === 'delay')!;
  // PSI recomputed from the histograms equals the reported figure.
  const expected = jan.columns.find((c) => c.name === 'delay')!.selfHistogram!;
  const actual = jun.columns.find((c) => c.name === 'delay')!.histogram!;
  expect(delay.psi).toBeCloseTo(psi(expected, actual), 12);
  const origin = report.drift.find((d) => d.column === 'origin')!;
  expect(origin.lInfinity).toBeGreaterThan(0.03); // ATL's share went to zero
  expect(report.anomalies.some((a) => a.kind === 'range' && a.column === 'delay')).toBe(true);
});

test('what the task needs is checked even without a schema', async () => {
  const stats = await withDuckDb((c) => computeStatistics(c, `(SELECT date, delay, origin, destination, 'x' || distance AS distance FROM ${month(2, 'LIMIT 1000')})`, { label: task.label }));
  const report = validateSpan({ stats, features: task.features, label: task.label, splitColumn: 'date' });
  expect(report.ok).toBe(false);
  expect(report.anomalies).toContainEqual(expect.objectContaining({ kind: 'type', column: 'distance', severity: 'error' }));
});

test('a missing or non-numeric label is named, with the overrides that fix it, and never reaches the SQL', async () => {
  const sample = month(2, 'LIMIT 1000');
  const missing = await withDuckDb((c) => computeStatistics(c, sample, { label: { column: 'delayed' } }));
  expect(missing.label).toBeUndefined();
  const r1 = validateSpan({ stats: missing, features: task.features, label: { column: 'delayed' }, splitColumn: 'date' });
  expect(r1.anomalies).toContainEqual(expect.objectContaining({ kind: 'missing-column', column: 'delayed', fix: ['label', 'dataset'], message: expect.stringMatching(/^column delayed \(the label\) is missing; the data has date, delay, distance, origin, destination$/) }));
  const text = await withDuckDb((c) => computeStatistics(c, sample, { label: { column: 'origin' } }));
  const r2 = validateSpan({ stats: text, features: task.features, label: { column: 'origin' }, splitColumn: 'date' });
  expect(r2.anomalies).toContainEqual(expect.objectContaining({ kind: 'type', column: 'origin', fix: ['label', 'dataset'], message: expect.stringContaining('is VARCHAR; expected numeric or boolean (binary classification') }));
  const r3 = validateSpan({ stats: await withDuckDb((c) => computeStatistics(c, sample, { label: { column: 'delay' } })), features: task.features, label: { column: 'delay' }, splitColumn: 'date' });
  expect(r3.anomalies).toContainEqual(expect.objectContaining({ kind: 'label', fix: ['label', 'dataset'], message: expect.stringMatching(/rows are not 0\/1 \(binary classification: give label.greaterThan/) }));
  const r4 = validateSpan({ stats: missing, features: [...task.features, { name: 'carrier', kind: 'categorical' }], label: task.label, splitColumn: 'when' });
  expect(r4.anomalies.filter((a) => a.kind === 'missing-column').map((a) => [a.column, a.fix])).toEqual([
    ['carrier', ['features', 'dataset']],
    ['when', ['split', 'dataset']],
  ]);
});

test('a usable label without its counts fails validation instead of passing unjudged', async () => {
  const stats = await withDuckDb((c) => computeStatistics(c, month(2, 'LIMIT 1000')));
  expect(stats.label).toBeUndefined();
  const report = validateSpan({ stats, features: task.features, label: task.label, splitColumn: 'date' });
  expect(report.ok).toBe(false);
  expect(report.anomalies).toContainEqual(expect.objectContaining({ kind: 'label', column: 'delay', severity: 'error', message: 'label delay: no label statistics were computed for it' }));
});
