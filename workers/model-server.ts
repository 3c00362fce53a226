import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError, UserFacingError, runMain } from '../infra/errors';
import { createLogger } from '../infra/log';
import { startModelServer } from './serving/server';
import { openRuntime } from './runtime';

/**
 * `npm run serve`: the model server. Loads every model's `production` version from the
 * registry, then serves OIP REST until SIGINT/SIGTERM, flushing the prediction log on the way out.
 */
const env = z.object({
  MLOPS_SERVE_PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  MLOPS_SERVE_HOST: z.string().default('127.0.0.1'),
  MLOPS_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  MLOPS_SERVE_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(1024 * 1024),
});

runMain(async () => {
  const { values: args } = parseArgs({ args: process.argv.slice(2), options: { port: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (args.help) {
    process.stdout.write('usage: npm run serve [-- --port 8000]   (MLOPS_SERVE_PORT, MLOPS_SERVE_HOST, MLOPS_ADMIN_TOKEN)\n');
    return;
  }
  const parsed = env.safeParse({ ...process.env, ...(args.port ? { MLOPS_SERVE_PORT: args.port } : {}) });
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const log = createLogger('serve');
  const runtime = await openRuntime(log);
  let server;
  try {
    server = await startModelServer({
      db: runtime.db,
      artifacts: runtime.artifacts,
      log,
      port: parsed.data.MLOPS_SERVE_PORT,
      host: parsed.data.MLOPS_SERVE_HOST,
      adminToken: parsed.data.MLOPS_ADMIN_TOKEN,
      maxBodyBytes: parsed.data.MLOPS_SERVE_MAX_BODY_BYTES,
    });
  } catch (err) {
    await runtime.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserFacingError(`port ${parsed.data.MLOPS_SERVE_PORT} is in use (MLOPS_SERVE_PORT)`);
    throw err;
  }
  const productions = await runtime.db
    .selectFrom('model_aliases')
    .innerJoin('models', 'models.id', 'model_aliases.model_id')
    .innerJoin('model_versions', 'model_versions.id', 'model_aliases.model_version_id')
    .select(['models.name', 'model_versions.version'])
    .where('model_aliases.alias', '=', 'production')
    .execute();
  for (const p of productions) {
    try {
      await server.store.setTraffic(p.name, { stable: p.version, canaryWeight: 0 });
      log.info(`serving ${p.name} v${p.version} (production)`);
    } catch (err) {
      log.error(`could not load ${p.name} v${p.version}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!parsed.data.MLOPS_ADMIN_TOKEN) log.warn('MLOPS_ADMIN_TOKEN is not set: the admin and feedback APIs are disabled');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info('stopping: draining requests and flushing the prediction log');
  await server.close();
  await runtime.close();
});
