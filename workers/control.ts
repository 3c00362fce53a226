import { runMain } from '../infra/errors';
import { workerMain } from './main';

/** Worker for the mlops-control queue. */
runMain(() => workerMain(process.argv.slice(2), { control: true, cpu: false, gpu: false }));
