import { loadConfig } from './config';
import { createDb, redactUrl } from './db/connection';
import { migrateToLatest } from './db/migrate';
import { runMain } from './errors';
import { createLogger } from './log';
import { resolvePostgres } from './postgres';

/** `npm run migrate`: brings the metadata store to the latest schema (workers also do this at start). */
runMain(async () => {
  const log = createLogger('migrate');
  const pg = await resolvePostgres(loadConfig(), log);
  const db = createDb(pg.url, { max: pg.maxConnections });
  try {
    const outcome = await migrateToLatest(db);
    process.stdout.write(
      `${redactUrl(pg.url)}: ${outcome.applied.length ? `applied ${outcome.applied.join(', ')}` : 'already up to date'} (latest ${outcome.latest})\n`,
    );
  } finally {
    await db.destroy();
    await pg.close();
  }
});
