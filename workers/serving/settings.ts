import { z } from 'zod';
import { ConfigError } from '../../infra/errors';
import type { ModelServerOptions } from './server';

/**
 * The model server's MLOPS_SERVE_* settings, read the same way by `npm run serve` and by the dev
 * stack's own server (which serves gRPC by default). A bad value is refused naming the variable.
 */

const port = z.coerce.number().int().min(0).max(65535);

const servingEnv = z.object({
  MLOPS_SERVE_PORT: port.default(8000),
  MLOPS_SERVE_HOST: z.string().default('127.0.0.1'),
  // `off` (or empty): no gRPC; 0: a free port (logged).
  MLOPS_SERVE_GRPC_PORT: z.preprocess((v) => (typeof v === 'string' && ['', 'off'].includes(v.trim().toLowerCase()) ? undefined : v), port.optional()),
  MLOPS_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  MLOPS_SERVE_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024),
  MLOPS_SERVE_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  MLOPS_SERVE_HEARTBEAT_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  MLOPS_SERVE_PREDICTION_LOG_INTERVAL_MS: z.coerce.number().int().min(10).max(3_600_000).default(500),
  MLOPS_SERVE_PREDICTION_LOG_MAX_BUFFERED: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  // 0 turns dynamic batching off: every request gets its own onnxruntime run.
  MLOPS_SERVE_BATCH_DELAY_MS: z.coerce.number().min(0).max(1000).default(2),
  MLOPS_SERVE_BATCH_MAX_ROWS: z.coerce.number().int().min(1).max(1_000_000).default(1024),
});

export type ServingSettings = z.output<typeof servingEnv>;

/** `defaults.grpcPort`: the gRPC port when MLOPS_SERVE_GRPC_PORT is unset (none for `npm run serve`). */
export function servingSettings(env: NodeJS.ProcessEnv, defaults: { grpcPort?: number } = {}): ServingSettings {
  const grpc = env.MLOPS_SERVE_GRPC_PORT ?? (defaults.grpcPort === undefined ? undefined : String(defaults.grpcPort));
  const parsed = servingEnv.safeParse({ ...env, MLOPS_SERVE_GRPC_PORT: grpc });
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** The server options these settings give (the caller adds the stores, the log and the tracer). */
export function serverOptions(s: ServingSettings): Pick<ModelServerOptions, 'port' | 'host' | 'grpcPort' | 'adminToken' | 'maxBodyBytes' | 'batching' | 'predictionLog' | 'serving'> {
  return {
    port: s.MLOPS_SERVE_PORT,
    host: s.MLOPS_SERVE_HOST,
    grpcPort: s.MLOPS_SERVE_GRPC_PORT,
    adminToken: s.MLOPS_ADMIN_TOKEN,
    maxBodyBytes: s.MLOPS_SERVE_MAX_BODY_BYTES,
    batching: { maxDelayMs: s.MLOPS_SERVE_BATCH_DELAY_MS, maxRows: s.MLOPS_SERVE_BATCH_MAX_ROWS },
    predictionLog: { intervalMs: s.MLOPS_SERVE_PREDICTION_LOG_INTERVAL_MS, maxBuffered: s.MLOPS_SERVE_PREDICTION_LOG_MAX_BUFFERED },
    serving: { pollMs: s.MLOPS_SERVE_POLL_MS, heartbeatMs: s.MLOPS_SERVE_HEARTBEAT_MS },
  };
}

/** Which variable names the port an EADDRINUSE from startModelServer is about. */
export function portInUse(err: unknown, s: ServingSettings): string | undefined {
  if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') return undefined;
  return (err as Error).message.startsWith('gRPC:') ? `port ${s.MLOPS_SERVE_GRPC_PORT} is in use (MLOPS_SERVE_GRPC_PORT)` : `port ${s.MLOPS_SERVE_PORT} is in use (MLOPS_SERVE_PORT)`;
}
