import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { literal, withDuckDb } from '../../activities/data/duck';
import { loadTable, prepareData } from '../../activities/data/prepare';
import { LocalArtifactStore, readAll } from '../../infra/artifacts';
import type { FeatureDef } from '../../workflows/contracts/training-spec';

/** Preparation of time features: the prepared splits keep the timestamp as epoch seconds, the input the served model takes. */

let dir: string;
let store: LocalArtifactStore;
let src: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prepare-time-'));
  store = new LocalArtifactStore(path.join(dir, 'store'));
  await store.ensureReady();
  src = path.join(dir, 'events.parquet');
  // 400 rows an hour apart from 2023-12-31 20:00 UTC, the 7th without a timestamp.
  await withDuckDb((c) =>
    c.run(`COPY (SELECT CASE WHEN i % 7 = 6 THEN NULL ELSE TIMESTAMP '2023-12-31 20:00:00' + i * INTERVAL 1 HOUR END AS at, i::DOUBLE AS x, (i % 3 = 0)::INT AS y
               FROM range(400) t(i)) TO ${literal(src)} (FORMAT parquet)`),
  );
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const prepare = (features: FeatureDef[]) =>
  prepareData(store, src, { snapshot: { uri: '', sha256: '' }, features, label: { column: 'y' }, split: { kind: 'random', seed: 1, testFraction: 0.3 }, seed: 1 }, fs.mkdtempSync(path.join(dir, 'run-')));

test('the splits hold the timestamp as epoch seconds beside the derived features; rows without it are left out', async () => {
  const data = await prepare([
    { name: 'hour', kind: 'numeric', column: 'at', transform: 'hour' },
    { name: 'month', kind: 'numeric', column: 'at', transform: 'month' },
    { name: 'x', kind: 'numeric' },
  ]);
  expect(data.features).toEqual([
    { name: 'hour', kind: 'numeric', column: 'at', transform: 'hour' },
    { name: 'month', kind: 'numeric', column: 'at', transform: 'month' },
    { name: 'x', kind: 'numeric' },
  ]);
  // 57 of the 400 (i = 6, 13, …, 398) have no timestamp.
  expect(data.train.rows + data.test.rows).toBe(343);
  const file = path.join(dir, 'train.parquet');
  fs.writeFileSync(file, await readAll(await store.get(store.keyFromUri(data.train.uri))));
  const t = await loadTable(file, data.features);
  for (let i = 0; i < t.rows; i++) {
    const e = Number(t.timestamps!.at![i]!);
    // x counts hours from the first timestamp, so each row's epoch seconds follow from it.
    expect(e).toBe(Date.UTC(2023, 11, 31, 20) / 1000 + t.numeric.x![i]! * 3600);
    expect(t.numeric.hour![i]).toBe(new Date(e * 1000).getUTCHours());
    expect(t.numeric.month![i]).toBe(new Date(e * 1000).getUTCMonth() + 1);
  }
});

test('a feature named as the timestamp column a derived feature comes from is refused by name: the model takes that column as its input', async () => {
  const err = await prepare([
    { name: 'hour', kind: 'numeric', column: 'at', transform: 'hour' },
    { name: 'at', kind: 'categorical' },
  ]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).message).toBe('features: at is the name of the timestamp column that hour is derived from; the model takes that column as an input, so a feature of the same name needs another name');
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
});
