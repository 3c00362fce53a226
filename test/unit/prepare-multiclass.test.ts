import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { literal, withDuckDb } from '../../activities/data/duck';
import { loadTable, prepareData } from '../../activities/data/prepare';
import { computeStatistics, validateSpan } from '../../activities/data/validate';
import { LocalArtifactStore, readAll } from '../../infra/artifacts';
import type { FeatureDef, LabelDef } from '../../workflows/contracts/training-spec';

/** Preparing a multiclass label: the classes come from the data, the splits hold their indices, and what cannot be learned is named. */

let dir: string;
let store: LocalArtifactStore;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prepare-multiclass-'));
  store = new LocalArtifactStore(path.join(dir, 'store'));
  await store.ensureReady();
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const FEATURES: FeatureDef[] = [{ name: 'x', kind: 'numeric' }];

/** A snapshot of 300 rows (what the snapshot step gives prepare: parquet): x = i, and the label from `label` (SQL over i). */
async function snapshot(name: string, label: string): Promise<string> {
  const file = path.join(dir, `${name}.parquet`);
  await withDuckDb((c) => c.run(`COPY (SELECT i::DOUBLE AS x, ${label} AS y FROM range(300) t(i)) TO ${literal(file)} (FORMAT parquet)`));
  return file;
}

const prepare = (file: string, label: LabelDef = { column: 'y', kind: 'multiclass' }, split = { kind: 'random' as const, seed: 1, testFraction: 0.3 }) =>
  prepareData(store, file, { snapshot: { uri: '', sha256: '' }, features: FEATURES, label, split, seed: 1 }, fs.mkdtempSync(path.join(dir, 'run-')));

async function rejection(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.type).toBe('DataError');
  expect(f.nonRetryable).toBe(true);
  // The engine's words and SQL stay out of what the user reads.
  expect(f.message).not.toMatch(/SELECT|Binder|list_position/);
  return f;
}

test('string classes are read from the data, sorted, stored with the splits, and the files hold each row\'s index', async () => {
  const file = await snapshot('modes', `['train', 'bus', 'car'][i % 3 + 1]`);
  const data = await prepare(file);
  expect(data.task).toBe('multiclass');
  expect(data.classes).toEqual(['bus', 'car', 'train']);
  expect(data.train.classCounts!.reduce((a, b) => a + b, 0)).toBe(data.train.rows);
  expect(data.test.classCounts!.reduce((a, b) => a + b, 0)).toBe(data.test.rows);
  const local = path.join(dir, 'modes-train.parquet');
  fs.writeFileSync(local, await readAll(await store.get(store.keyFromUri(data.train.uri))));
  const t = await loadTable(local, data.features, undefined, { task: 'multiclass', classes: data.classes });
  expect(t.label).toBeInstanceOf(Int32Array);
  expect(t.classes).toEqual(['bus', 'car', 'train']);
  // x = i, and row i's class is ['train', 'bus', 'car'][i % 3].
  for (let i = 0; i < t.rows; i++) expect(t.classes![t.label[i]!]).toBe(['train', 'bus', 'car'][t.numeric.x![i]! % 3]);
  await expect(loadTable(local, data.features, undefined, { task: 'multiclass' })).rejects.toThrow(/needs the prepared classes/);
});

test('integer classes (and whole floats) stay integers, in numeric order', async () => {
  expect((await prepare(await snapshot('ints', `(i % 4) * 5 - 5`))).classes).toEqual([-5, 0, 5, 10]);
  expect((await prepare(await snapshot('floats', `((i % 3) * 10)::DOUBLE`))).classes).toEqual([0, 10, 20]);
});

test('what a multiclass label cannot be is a data error naming the label, with no SQL', async () => {
  const single = await rejection(prepare(await snapshot('single', `'only'`)));
  expect(single.message).toMatch(/label y has a single class \(only\)/);
  const fractional = await rejection(prepare(await snapshot('fraction', `i / 7`)));
  expect(fractional.message).toMatch(/label y: \d+ rows are not whole numbers; a class is a string or an integer/);
  // The last 20% by x as test, and a class only there: the model could never predict it.
  const late = await rejection(prepare(await snapshot('late', `CASE WHEN i >= 290 THEN 'new' ELSE ['a', 'b'][i % 2 + 1] END`), undefined, { kind: 'time', column: 'x', testFraction: 0.2 } as never));
  expect(late.message).toMatch(/class "new" of label y is in the test split only/);
  const many = await rejection(prepare(await snapshot('many', `'id' || i`)));
  expect(many.message).toMatch(/300 distinct values; a multiclass task takes at most 100 classes/);
});

test('validation counts a multiclass label\'s classes and names the cases it cannot train on', async () => {
  const stats = async (label: string) => withDuckDb(async (c) => computeStatistics(c, `(SELECT i::DOUBLE AS x, ${label} AS y FROM range(300) t(i))`, { label: { column: 'y', kind: 'multiclass' } }));
  const report = async (label: string) => {
    const r = validateSpan({ stats: await stats(label), features: FEATURES, label: { column: 'y', kind: 'multiclass' } });
    return { errors: r.anomalies.filter((a) => a.severity === 'error') };
  };
  expect((await stats(`['a', 'b', 'c'][i % 3 + 1]`)).label).toEqual({ labelled: 300, invalid: 0, classes: 3 });
  expect((await report(`['a', 'b', 'c'][i % 3 + 1]`)).errors).toEqual([]);
  expect((await report(`'a'`)).errors.map((e) => e.message)).toEqual([expect.stringMatching(/label y: a single class in 300 labelled rows/)]);
  expect((await report(`i / 7`)).errors.map((e) => e.message)).toEqual([expect.stringMatching(/label y: \d+ rows are not whole numbers/)]);
  expect((await report(`'id' || i`)).errors.map((e) => e.message)).toEqual([expect.stringMatching(/300 distinct values; a multiclass task takes at most 100 classes/)]);
  // A date is no class.
  expect((await report(`DATE '2024-01-01' + i::INT`)).errors.map((e) => e.message)).toEqual([expect.stringMatching(/column y \(the label, a class\) is DATE; expected string or numeric or boolean/)]);
});
