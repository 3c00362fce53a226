import { runMain } from '../infra/errors';
import { workerMain } from './main';

/** Worker for the mlops-cpu queue. */
runMain(() => workerMain(process.argv.slice(2), { control: false, cpu: true, gpu: false }));
