import { runMain } from '../infra/errors';
import { workerMain } from './main';

/**
 * Development worker, one process serving the queues you name:
 * `npm run worker -- --queues control,cpu,gpu --allow-cpu`. Without DATABASE_URL it uses the
 * local PostgreSQL server, else embedded PGlite.
 */
runMain(() => workerMain(process.argv.slice(2), undefined, { dev: true }));
