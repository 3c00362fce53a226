import { loadClientConnectConfig } from '@temporalio/envconfig';
import { UserFacingError, describeError } from './errors';

export interface TemporalSettings {
  address: string;
  namespace: string;
  /** Options for NativeConnection/Connection (address, TLS, API key, metadata). */
  connectionOptions: ReturnType<typeof loadClientConnectConfig>['connectionOptions'] & { address: string };
}

/**
 * Temporal connection settings, read the way the Temporal CLI and SDKs read them: the
 * TEMPORAL_* environment variables and the `temporal.toml` profile (via @temporalio/envconfig).
 */
export function temporalSettings(): TemporalSettings {
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig();
  } catch (err) {
    throw new UserFacingError(`Temporal client configuration: ${describeError(err)}`);
  }
  const address = loaded.connectionOptions.address ?? 'localhost:7233';
  return {
    address,
    namespace: loaded.namespace ?? 'default',
    connectionOptions: { ...loaded.connectionOptions, address },
  };
}

export async function withTimeout<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function unreachable(settings: TemporalSettings, err: unknown): UserFacingError {
  return new UserFacingError(
    `TEMPORAL_ADDRESS: cannot reach Temporal at ${settings.address} (namespace ${settings.namespace}): ${describeError(err).split('\n')[0]}`,
  );
}
