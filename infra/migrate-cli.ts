import { loadConfig } from './config';
import { createDb, redactUrl } from './db/connection';
import { migrateToLatest } from './db/migrate';
import { runMain } from './errors';
import { createLogger } from './log';
import { resolvePostgres } from './postgres';

/** `npm run migrate`: brings the metadata store to the latest schema (workers also do this at start). */
runMain(async () => {
  const log = createLogger('migrate');
  const config = loadConfig();
  const pg = await resolvePostgres(config, log);
  const db = createDb(pg.url, { max: pg.maxConnections, schema: config.databaseSchema });
  try {
    const outcome = await migrateToLatest(db, config.databaseSchema);
    process.stdout.write(
      `${redactUrl(pg.url)}, schema ${config.databaseSchema}: ${outcome.applied.length ? `applied ${outcome.applied.join(', ')}` : 'already up to date'} (latest ${outcome.latest})\n`,
    );
  } finally {
    await db.destroy();
    await pg.close();
  }
});
