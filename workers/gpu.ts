import { runMain } from '../infra/errors';
import { workerMain } from './main';

/** Worker for the mlops-gpu queues (mlops-gpu and mlops-gpu-<class>). */
runMain(() => workerMain(process.argv.slice(2), { control: false, cpu: false, gpu: true }));
