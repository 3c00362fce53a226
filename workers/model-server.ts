import { parseArgs } from 'node:util';
import { loadConfig } from '../infra/config';
import { UserFacingError, runMain } from '../infra/errors';
import { createLogger } from '../infra/log';
import { startTracing } from '../infra/tracing';
import { startModelServer } from './serving/server';
import { portInUse, serverOptions, servingSettings } from './serving/settings';
import { openRuntime } from './runtime';

/**
 * `npm run serve`: the model server. Follows the serving state in PostgreSQL (traffic and the
 * versions to hold; a restarted server or a second replica serves the same split), serves OIP
 * REST (and gRPC with MLOPS_SERVE_GRPC_PORT) until SIGINT/SIGTERM, then stops taking requests, flushes the prediction log and marks
 * itself stopped in `model_servers` on the way out. A second signal exits at once. With the
 * OTEL_* variables (see infra/config.ts) it exports server spans as service `mlops-serve`.
 */
runMain(async () => {
  const { values: args } = parseArgs({ args: process.argv.slice(2), options: { port: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (args.help) {
    process.stdout.write('usage: npm run serve [-- --port 8000]   (MLOPS_SERVE_PORT, MLOPS_SERVE_HOST, MLOPS_SERVE_GRPC_PORT, MLOPS_ADMIN_TOKEN)\n');
    return;
  }
  const settings = servingSettings({ ...process.env, ...(args.port ? { MLOPS_SERVE_PORT: args.port } : {}) });
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
    server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log, ...serverOptions(settings), onnxDevice: config.onnxDevice, tracer: tracing?.tracer });
  } catch (err) {
    await tracing?.shutdown();
    await runtime.close();
    const inUse = portInUse(err, settings);
    if (inUse) throw new UserFacingError(inUse);
    throw err;
  }
  if (!settings.MLOPS_ADMIN_TOKEN) log.warn('MLOPS_ADMIN_TOKEN is not set: the admin and feedback APIs are disabled');
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
