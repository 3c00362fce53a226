import { createLogger } from '../../infra/log';
import type { WorkerRuntime } from '../../workers/runtime';
import { startModelServer, type RunningModelServer } from '../../workers/serving/server';

/** The model server over loopback for a test's runtime (prediction log flushed every 50 ms), where that runtime's deployment activities find it. */
export async function serveForTest(runtime: WorkerRuntime, adminToken: string): Promise<RunningModelServer> {
  const server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('test-serve'), adminToken, predictionLog: { intervalMs: 50 } });
  runtime.config.modelServer = { url: server.url, adminToken };
  return server;
}
