import { parentPort, workerData } from 'node:worker_threads';

/**
 * A training worker thread: loads the trainer module named in its data and runs its thread
 * function, so the activity's event loop keeps heartbeating while the CPU is busy. Any trainer
 * that wants a thread of its own uses this one entry (see thread-runner.ts).
 */

export interface ThreadData {
  module: string;
  export: string;
  job: unknown;
}

export type ThreadPost = (message: unknown, transfer?: ArrayBuffer[]) => void;

const data = workerData as ThreadData;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fn = (require(data.module) as Record<string, (job: unknown, post: ThreadPost) => void>)[data.export];
if (typeof fn !== 'function') throw new Error(`training thread: ${data.module} exports no function ${data.export}`);
fn(data.job, (message, transfer) => parentPort!.postMessage(message, transfer ?? []));
