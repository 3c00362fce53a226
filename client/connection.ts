import { Client, Connection } from '@temporalio/client';
import { withEncryption } from '../infra/codec';
import { loadConfig, taskQueuesFromEnv } from '../infra/config';
import { temporalSettings, unreachable, withTimeout } from '../infra/temporal';
import { startTracing, temporalTracingPlugin, type Tracing } from '../infra/tracing';
import type { TaskQueues } from '../workflows/contracts/task-queues';

/** One tracer provider per process for the clients below; entry points flush it on exit (shutdownTracing). */
let clientTracing: Tracing | undefined;

/** A Temporal client configured like the Temporal CLI (TEMPORAL_* env vars, temporal.toml profile). */
export async function connectClient(): Promise<{ client: Client; connection: Connection; address: string; taskQueues: TaskQueues }> {
  const settings = temporalSettings();
  let connection: Connection;
  try {
    connection = await withTimeout('Temporal', Connection.connect(settings.connectionOptions), 15_000);
  } catch (err) {
    throw unreachable(settings, err);
  }
  // With MLOPS_CODEC_KEYS the CLI and the webhook seal and open payloads like the workers; with
  // the OTEL_* variables their calls start traces the workers continue.
  const config = loadConfig();
  const keys = config.codecKeys;
  if (config.tracing) clientTracing ??= startTracing(config.tracing, { defaultServiceName: 'temporal-mlops-client' });
  const client = new Client({
    connection,
    namespace: settings.namespace,
    ...(keys ? { dataConverter: withEncryption(undefined, keys) } : {}),
    ...(clientTracing ? { plugins: [temporalTracingPlugin(clientTracing)] } : {}),
  });
  return { client, connection, address: settings.address, taskQueues: taskQueuesFromEnv() };
}
