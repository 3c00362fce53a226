import * as ort from 'onnxruntime-node';
import type { Table } from '../../activities/ml/dataset';
import { synthetic } from '../helpers/synthetic';
import { exportGbdtOnnx, predictGbdt, trainGbdt } from '../../activities/ml/gbdt';
import { exportLogregOnnx, predictLogreg, trainLogreg } from '../../activities/ml/logreg';
import { auc } from '../../activities/ml/metrics';

async function onnxScores(model: Buffer, t: Table): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const feeds: Record<string, ort.Tensor> = {
      x1: new ort.Tensor('float32', t.numeric.x1!, [t.rows, 1]),
      hour: new ort.Tensor('float32', t.numeric.hour!, [t.rows, 1]),
      origin: new ort.Tensor('string', t.categorical.origin!, [t.rows, 1]),
    };
    const out = await session.run(feeds);
    return out.probability!.data as Float32Array;
  } finally {
    await session.release();
  }
}

test('GBDT exported to ONNX scores exactly like the trainer, with unseen categories and missing values', async () => {
  const train = synthetic(20_000, 1, { missing: true });
  const test = synthetic(3_000, 2, { unseen: true, missing: true });
  const model = trainGbdt(train, { rounds: 40, maxDepth: 4, learningRate: 0.2, seed: 7 });
  const onnx = exportGbdtOnnx(model);
  const own = predictGbdt(model, test);
  const served = await onnxScores(onnx, test);
  let maxDiff = 0;
  for (let i = 0; i < test.rows; i++) maxDiff = Math.max(maxDiff, Math.abs(own[i]! - served[i]!));
  expect(maxDiff).toBeLessThanOrEqual(1e-5);

  const modelAuc = auc(own, test.label);
  // A single feature's AUC is the floor; the boosted model must learn the interactions.
  const x1Auc = auc(Array.from(test.numeric.x1!, (v) => (Number.isNaN(v) ? 0 : v)), test.label);
  expect(modelAuc).toBeGreaterThan(0.75);
  expect(modelAuc).toBeGreaterThan(x1Auc + 0.05);
});

test('same data, params and seed give the same model bytes', () => {
  const data = synthetic(3_000, 3);
  const a = exportGbdtOnnx(trainGbdt(data, { rounds: 10, maxDepth: 3, subsample: 0.8, seed: 11 }));
  const b = exportGbdtOnnx(trainGbdt(data, { rounds: 10, maxDepth: 3, subsample: 0.8, seed: 11 }));
  const c = exportGbdtOnnx(trainGbdt(data, { rounds: 10, maxDepth: 3, subsample: 0.8, seed: 12 }));
  expect(a.equals(b)).toBe(true);
  expect(a.equals(c)).toBe(false);
});

test('AUC handles ties like the Mann–Whitney statistic', () => {
  expect(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 10);
  expect(auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBeCloseTo(0.5, 10);
  expect(auc([1, 2, 3], [1, 1, 1])).toBeNaN();
});

test('logistic regression exported to ONNX (target encoding, imputation, scaling in the graph) matches the trainer; GBDT beats it', async () => {
  const train = synthetic(20_000, 4, { missing: true });
  const test = synthetic(3_000, 5, { unseen: true, missing: true });
  const lr = trainLogreg(train);
  expect(lr.iterations).toBeLessThan(25);
  const own = predictLogreg(lr, test);
  const served = await onnxScores(exportLogregOnnx(lr), test);
  let maxDiff = 0;
  for (let i = 0; i < test.rows; i++) maxDiff = Math.max(maxDiff, Math.abs(own[i]! - served[i]!));
  expect(maxDiff).toBeLessThanOrEqual(1e-5);
  const lrAuc = auc(own, test.label);
  expect(lrAuc).toBeGreaterThan(0.6);
  const gbdtAuc = auc(predictGbdt(trainGbdt(train, { rounds: 40, maxDepth: 4, learningRate: 0.2 }), test), test.label);
  expect(gbdtAuc).toBeGreaterThan(lrAuc);
});
