import { runMain } from '../infra/errors';
import { workerMain } from './main';

/** One process serving the queues you name: `npm run worker -- --queues control,cpu,gpu --allow-cpu`. */
runMain(() => workerMain(process.argv.slice(2)));
