import type { FeatureSpec } from '../../activities/ml/dataset';
import { modelInputs } from '../../activities/ml/model-inputs';
import { createLogger } from '../../infra/log';
import type { WorkerRuntime } from '../../workers/runtime';
import { startModelServer, type RunningModelServer } from '../../workers/serving/server';

/** The model server over loopback for a test's runtime (prediction log flushed every 50 ms), where that runtime's deployment activities find it. */
export async function serveForTest(runtime: WorkerRuntime, adminToken: string): Promise<RunningModelServer> {
  const server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('test-serve'), adminToken, predictionLog: { intervalMs: 50 } });
  runtime.config.modelServer = { url: server.url, adminToken };
  return server;
}

/** One request row of constant values for a model trained on `features`: its inputs as modelInputs maps them. */
export function constantRow(features: FeatureSpec[], values: { number: number; text: string; epoch?: number }) {
  return {
    inputs: modelInputs(features).map((i) => ({
      name: i.name,
      datatype: i.datatype,
      shape: [1, 1],
      data: [i.datatype === 'INT64' ? (values.epoch ?? 1_710_000_000) : i.datatype === 'FP32' ? values.number : values.text],
    })),
  };
}
