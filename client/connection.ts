import { Client, Connection } from '@temporalio/client';
import { temporalSettings, unreachable, withTimeout } from '../infra/temporal';

/** A Temporal client configured like the Temporal CLI (TEMPORAL_* env vars, temporal.toml profile). */
export async function connectClient(): Promise<{ client: Client; connection: Connection; address: string }> {
  const settings = temporalSettings();
  let connection: Connection;
  try {
    connection = await withTimeout('Temporal', Connection.connect(settings.connectionOptions), 15_000);
  } catch (err) {
    throw unreachable(settings, err);
  }
  return { client: new Client({ connection, namespace: settings.namespace }), connection, address: settings.address };
}
