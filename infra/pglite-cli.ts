import { loadConfig } from './config';
import { runMain } from './errors';
import { createLogger } from './log';
import { startPglite } from './postgres';

/**
 * `npm run pglite`: serves the embedded PGlite database on its Unix socket until Ctrl-C, for
 * tools (psql, a second worker) that want the metadata store without a PostgreSQL server.
 */
runMain(async () => {
  const log = createLogger('pglite');
  const handle = await startPglite(loadConfig(), log);
  process.stdout.write(`PGLITE_URL=${handle.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await handle.close();
  log.info('stopped');
});
