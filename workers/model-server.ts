import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadConfig } from '../infra/config';
import { ConfigError, UserFacingError, runMain } from '../infra/errors';
import { createLogger } from '../infra/log';
import { startTracing } from '../infra/tracing';
import { startModelServer } from './serving/server';
import { openRuntime } from './runtime';

/**
 * `npm run serve`: the model server. Follows the serving state in PostgreSQL (traffic and the
 * versions to hold; a restarted server or a second replica serves the same split), serves OIP
 * REST (and gRPC with MLOPS_SERVE_GRPC_PORT) until SIGINT/SIGTERM, then stops taking requests, flushes the prediction log and marks
 * itself stopped in `model_servers` on the way out. A second signal exits at once. With the
 * OTEL_* variables (see infra/config.ts) it exports server spans as service `mlops-serve`.
 */
const env = z.object({
  MLOPS_SERVE_PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  MLOPS_SERVE_HOST: z.string().default('127.0.0.1'),
  // Unset or `off`: no gRPC; 0: a free port (logged).
  MLOPS_SERVE_GRPC_PORT: z.preprocess((v) => (typeof v === 'string' && ['', 'off'].includes(v.trim().toLowerCase()) ? undefined : v), z.coerce.number().int().min(0).max(65535).optional()),
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

runMain(async () => {
  const { values: args } = parseArgs({ args: process.argv.slice(2), options: { port: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (args.help) {
    process.stdout.write('usage: npm run serve [-- --port 8000]   (MLOPS_SERVE_PORT, MLOPS_SERVE_HOST, MLOPS_SERVE_GRPC_PORT, MLOPS_ADMIN_TOKEN)\n');
    return;
  }
  const parsed = env.safeParse({ ...process.env, ...(args.port ? { MLOPS_SERVE_PORT: args.port } : {}) });
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const log = createLogger('serve');
  let stopping = false;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without flushing`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: stopping`);
    stop();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const config = loadConfig();
  const runtime = await openRuntime(log, { config });
  const tracing = config.tracing && startTracing(config.tracing, { defaultServiceName: 'mlops-serve', log: log.child('tracing') });
  let server;
  try {
    server = await startModelServer({
      db: runtime.db,
      artifacts: runtime.artifacts,
      log,
      port: parsed.data.MLOPS_SERVE_PORT,
      host: parsed.data.MLOPS_SERVE_HOST,
      grpcPort: parsed.data.MLOPS_SERVE_GRPC_PORT,
      adminToken: parsed.data.MLOPS_ADMIN_TOKEN,
      maxBodyBytes: parsed.data.MLOPS_SERVE_MAX_BODY_BYTES,
      batching: { maxDelayMs: parsed.data.MLOPS_SERVE_BATCH_DELAY_MS, maxRows: parsed.data.MLOPS_SERVE_BATCH_MAX_ROWS },
      predictionLog: { intervalMs: parsed.data.MLOPS_SERVE_PREDICTION_LOG_INTERVAL_MS, maxBuffered: parsed.data.MLOPS_SERVE_PREDICTION_LOG_MAX_BUFFERED },
      serving: { pollMs: parsed.data.MLOPS_SERVE_POLL_MS, heartbeatMs: parsed.data.MLOPS_SERVE_HEARTBEAT_MS },
      tracer: tracing?.tracer,
    });
  } catch (err) {
    await tracing?.shutdown();
    await runtime.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserFacingError(`port ${parsed.data.MLOPS_SERVE_PORT} is in use (MLOPS_SERVE_PORT)`);
    throw err;
  }
  if (!parsed.data.MLOPS_ADMIN_TOKEN) log.warn('MLOPS_ADMIN_TOKEN is not set: the admin and feedback APIs are disabled');
  if (tracing) log.info(`tracing: server spans to ${tracing.url} as ${tracing.serviceName}`);
  void server.loaded.then(() => {
    for (const m of server.store.models.values()) log.info(`serving ${m.name}: ${JSON.stringify(m.traffic)} (generation ${m.generation})`);
    const missing = server.sync.missing();
    if (missing.length) log.warn(`not ready: ${missing.join(', ')} not loaded yet (retrying)`);
  });
  await stopped;
  log.info('stopping: draining requests and flushing the prediction log');
  await server.close();
  log.info(`stopped: ${server.predictions.written} predictions written, ${server.predictions.dropped} dropped`);
  await tracing?.shutdown();
  await runtime.close();
});
