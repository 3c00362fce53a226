import { workerData } from 'node:worker_threads';
import { helperLoop, type PoolData } from './gbdt-pool';

/** A GBDT helper thread (see gbdt-pool.ts). */
helperLoop(workerData as PoolData);
