import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { literal, withDuckDb } from '../../activities/data/duck';
import { loadTable, prepareData, type PreparedData } from '../../activities/data/prepare';
import { flightsParquetPath } from '../../activities/data/snapshot';
import type { Table } from '../../activities/ml/dataset';
import { exportGbdtOnnx, trainGbdt } from '../../activities/ml/gbdt';
import { signatureOf } from '../../activities/training/scoring';
import { recordArtifact, registerModelVersion, upsertModel } from '../../infra/db/repositories';
import type { WorkerRuntime } from '../../workers/runtime';
import { PRESETS } from '../../workflows/contracts/training-spec';
import { withTimeInputs } from '../../activities/ml/time-graph';

/**
 * Registered versions without a training pipeline: a small GBDT on March flights, exported to
 * ONNX and recorded like the pipeline does, with the evaluation sample the contract test reads.
 * `inverted` trains on flipped labels: a version whose predictions shift.
 */
export interface RegisteredModels {
  data: PreparedData;
  train: Table;
  register(model: string, labels: 'real' | 'inverted', rounds: number): Promise<number>;
  close(): void;
}

export async function registeredModels(runtime: WorkerRuntime, rows = 20_000): Promise<RegisteredModels> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registered-'));
  const src = path.join(dir, 'mar.parquet');
  await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 3 LIMIT ${rows}) TO ${literal(src)} (FORMAT parquet)`));
  const task = PRESETS['flights-delay'];
  const data = await prepareData(runtime.artifacts, src, { snapshot: { uri: '', sha256: '' }, features: task.features, label: task.label, split: task.split, seed: 3 }, dir);
  const train = await loadTable(path.join(dir, 'train.parquet'), data.features);
  return {
    data,
    train,
    async register(model, labels, rounds) {
      const t = labels === 'real' ? train : { ...train, label: train.label.map((y) => 1 - y) };
      // As the train step stores it: taking the timestamp the time features derive from.
      const bytes = withTimeInputs(exportGbdtOnnx(trainGbdt(t, { rounds, maxDepth: 4 })), data.features);
      const put = await runtime.artifacts.putContent(bytes, { mediaType: 'application/onnx' });
      const artifact = await recordArtifact(runtime.db, { uri: put.uri, sha256: put.sha256, bytes: put.bytes, media_type: 'application/onnx', producing_step_run_id: null });
      const m = await upsertModel(runtime.db, model);
      const sig = signatureOf(data.features);
      const mv = await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: `test/${put.sha256}`, status: 'registered', metrics: { lineage: { test: data.test } }, onnxArtifactId: artifact.id, inputSignature: sig.inputs, outputSignature: sig.outputs });
      return mv.version;
    },
    close: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
