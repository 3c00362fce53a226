import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { gpuChildEnv } from '../../gpu-context';
import type { ThreadData } from './thread';

/**
 * Runs `module`'s `exportName(job, post)` in a worker thread and hands each message to
 * `onMessage` until the thread posts `{ type: 'done' }`. Cancellation terminates the thread.
 */
export async function runInThread<Done extends { type: 'done' }, Message = unknown>(opts: {
  module: string;
  exportName: string;
  job: unknown;
  signal: AbortSignal;
  onMessage: (m: Message) => void;
}): Promise<Done> {
  const data: ThreadData = { module: opts.module, export: opts.exportName, job: opts.job };
  // The thread's process.env names the step's GPUs (CUDA_VISIBLE_DEVICES), like a child process's.
  const worker = new Worker(threadScript(), { workerData: data, env: gpuChildEnv() });
  const onCancel = () => void worker.terminate();
  opts.signal.addEventListener('abort', onCancel);
  try {
    return await new Promise<Done>((resolve, reject) => {
      let finished: Done | undefined;
      worker.on('message', (m: Message | Done) => {
        if ((m as Done).type === 'done') finished = m as Done;
        else opts.onMessage(m as Message);
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        if (opts.signal.aborted) reject(new Error('training cancelled'));
        else if (finished) resolve(finished);
        else reject(new Error(`training thread exited with code ${code}`));
      });
    });
  } finally {
    opts.signal.removeEventListener('abort', onCancel);
    await worker.terminate();
  }
}

/**
 * The thread's script: the compiled `thread.js` beside this file when we run from the build,
 * else (TypeScript sources under jest or tsx) an entry that registers tsx first, since a worker
 * thread inherits no loader.
 */
function threadScript(): string {
  return __filename.endsWith('.js') ? path.join(__dirname, 'thread.js') : path.join(__dirname, 'thread-entry.js');
}
