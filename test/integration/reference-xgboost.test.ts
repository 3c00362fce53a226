import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CategoricalEncoding, Table } from '../../activities/ml/dataset';
import { xgboostReference } from '../reference/xgboost';
import { predictGbdt, trainGbdt } from '../../activities/ml/gbdt';
import { auc, multiclassMetrics, rmse } from '../../activities/ml/metrics';
import { LocalArtifactStore } from '../../infra/artifacts';
import { literal, withDuckDb } from '../../activities/data/duck';
import { loadTable, prepareData } from '../../activities/data/prepare';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { PRESETS, type LabelDef } from '../../workflows/contracts/training-spec';
import { synthetic } from '../helpers/synthetic';

/** Our GBDT against Debian's xgboost (`hist`), the reference users will compare it with. */

const xgboostAuc = (train: Table, test: Table, encodings: CategoricalEncoding[], params: Record<string, number>) => xgboostReference(train, test, encodings, params).auc ?? NaN;

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

/**
 * The same public data (flights, January, the time split) as a regression of the delay in
 * minutes and as a four-class task of delay buckets: our trainer and xgboost on the same
 * matrix, the figures side by side in the log for the note.
 */
async function januaryTask<T>(label: LabelDef, labelSql: string, body: (train: Table, test: Table) => T): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xgb-tasks-'));
  try {
    const store = new LocalArtifactStore(path.join(dir, 'store'));
    await store.ensureReady();
    const january = path.join(dir, 'january.parquet');
    await withDuckDb((c) => c.run(`COPY (SELECT *, ${labelSql} AS target FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 1) TO ${literal(january)} (FORMAT parquet)`));
    const task = PRESETS['flights-delay'];
    const prepared = await prepareData(store, january, { snapshot: { uri: '', sha256: '' }, features: task.features, label, split: task.split, seed: 42, sampleRows: 150_000 }, dir);
    const as = { task: prepared.task, classes: prepared.classes };
    const [train, test] = await withDuckDb(async (c) => [await loadTable(path.join(dir, 'train.parquet'), prepared.features, c, as), await loadTable(path.join(dir, 'test.parquet'), prepared.features, c, as)]);
    return body(train, test);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const SAME = { rounds: 60, maxDepth: 6, learningRate: 0.1, maxBins: 255, lambda: 1, minChildWeight: 1 };

test('flights January, delay in minutes (regression): RMSE within 2% of xgboost hist with the same parameters', async () => {
  await januaryTask({ column: 'target', kind: 'regression' }, 'delay::DOUBLE', (train, test) => {
    const model = trainGbdt(train, SAME);
    const ours = rmse(predictGbdt(model, test), test.label);
    const ref = xgboostReference(train, test, model.encodings, SAME).rmse ?? NaN;
    console.log(`regression RMSE: ours ${ours.toFixed(4)}, xgboost ${ref.toFixed(4)} (${((ours / ref - 1) * 100).toFixed(2)}%), ${train.rows} training rows`);
    expect(Math.abs(ours / ref - 1)).toBeLessThanOrEqual(0.02);
  });
});

test('flights January, delay bucket (multiclass, 4 classes): macro-F1 within 0.01 of xgboost hist with the same parameters', async () => {
  const buckets = `CASE WHEN delay <= 0 THEN 'early' WHEN delay <= 15 THEN 'on time' WHEN delay <= 60 THEN 'late' ELSE 'very late' END`;
  await januaryTask({ column: 'target', kind: 'multiclass' }, buckets, (train, test) => {
    expect(train.classes).toEqual(['early', 'late', 'on time', 'very late']);
    const model = trainGbdt(train, SAME);
    const ours = multiclassMetrics(predictGbdt(model, test), test.label, 4);
    const ref = xgboostReference(train, test, model.encodings, SAME);
    console.log(`multiclass macro-F1: ours ${ours.macroF1.toFixed(4)}, xgboost ${ref.macroF1?.toFixed(4)}; log loss ours ${ours.logLoss.toFixed(4)}, xgboost ${ref.logLoss?.toFixed(4)}; ${train.rows} training rows`);
    expect(Math.abs(ours.macroF1 - (ref.macroF1 ?? NaN))).toBeLessThanOrEqual(0.01);
    expect(ours.logLoss).toBeLessThanOrEqual((ref.logLoss ?? NaN) * 1.01);
  });
});
