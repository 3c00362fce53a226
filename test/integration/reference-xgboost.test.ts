import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CategoricalEncoding, Table } from '../../activities/ml/dataset';
import { xgboostReference } from '../reference/xgboost';
import { predictGbdt, trainGbdt } from '../../activities/ml/gbdt';
import { auc } from '../../activities/ml/metrics';
import { LocalArtifactStore } from '../../infra/artifacts';
import { literal, withDuckDb } from '../../activities/data/duck';
import { loadTable, prepareData } from '../../activities/data/prepare';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { PRESETS } from '../../workflows/contracts/training-spec';
import { synthetic } from '../helpers/synthetic';

/** Our GBDT against Debian's xgboost (`hist`), the reference users will compare it with. */

const xgboostAuc = (train: Table, test: Table, encodings: CategoricalEncoding[], params: Record<string, number>) => xgboostReference(train, test, encodings, params).auc;

test('synthetic data with missing values: AUC within 0.01 of xgboost hist with the same parameters', () => {
  const train = synthetic(20_000, 11, { missing: true });
  const test = synthetic(8_000, 12, { missing: true });
  const p = { rounds: 60, maxDepth: 5, learningRate: 0.1, maxBins: 128, lambda: 1, minChildWeight: 1 };
  const model = trainGbdt(train, p);
  const ours = auc(predictGbdt(model, test), test.label);
  expect(Math.abs(ours - xgboostAuc(train, test, model.encodings, p))).toBeLessThanOrEqual(0.01);
});

test('flights January (time split): AUC within 0.01 of xgboost hist with the same parameters', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xgb-flights-'));
  try {
    const store = new LocalArtifactStore(path.join(dir, 'store'));
    await store.ensureReady();
    const january = path.join(dir, 'january.parquet');
    await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 1) TO ${literal(january)} (FORMAT parquet)`));
    const task = PRESETS['flights-delay'];
    const prepared = await prepareData(store, january, { snapshot: { uri: '', sha256: '' }, features: task.features, label: task.label, split: task.split, seed: 42, sampleRows: 150_000 }, dir);
    const [train, test] = await withDuckDb(async (c) => [await loadTable(path.join(dir, 'train.parquet'), prepared.features, c), await loadTable(path.join(dir, 'test.parquet'), prepared.features, c)]);
    const p = { rounds: 60, maxDepth: 6, learningRate: 0.1, maxBins: 255, lambda: 1, minChildWeight: 1 };
    const model = trainGbdt(train, p);
    const ours = auc(predictGbdt(model, test), test.label);
    const ref = xgboostAuc(train, test, model.encodings, p);
    expect(ours).toBeGreaterThan(0.6);
    expect(Math.abs(ours - ref)).toBeLessThanOrEqual(0.01);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
