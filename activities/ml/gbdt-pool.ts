import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { runTask, type GbdtShared } from './gbdt-kernels';

/**
 * The helper threads of one training run. trainGbdt is synchronous (it runs in the activity's
 * training thread, while the activity's event loop heartbeats), so the training thread posts a
 * batch of tasks, works on it alongside the helpers, and blocks in Atomics.wait until every task
 * is done: no event loop, no message copies. Tasks are fixed by the data, never by the thread
 * count, and each writes only its own memory, so which thread ran which task cannot change a
 * single bit of the model.
 *
 * A batch is one 64-bit word, claimed by compare-and-swap: generation | count | next task.
 * A helper that wakes late finds nothing left to claim and goes back to sleep, so the training
 * thread waits only for tasks in progress, never for a helper the OS has not scheduled yet (on a
 * busy machine, that wait would cost a time slice per batch).
 */

/** ctrl's Int32 fields; the claim word is its own BigInt64Array. */
const GEN = 0;
const DONE = 1;
const FAILED = 2;
const STOPPED = 4;
const HELPED = 5;

const IDX_BITS = 21n;
const IDX_MASK = (1n << IDX_BITS) - 1n;
const MAX_TASKS = Number(IDX_MASK);

export interface PoolData extends GbdtShared {
  ctrl: Int32Array;
  claim: BigInt64Array;
}

/** Live helper threads in this process, for tests that check a run leaves none behind. */
let live = 0;
export function liveGbdtWorkers(): number {
  return live;
}

/** Tasks that helper threads (not the training thread) have run in this process, for tests. */
let helped = 0;
export function gbdtHelperTasks(): number {
  return helped;
}

/** Claims and runs tasks of the posted batch until none is left. */
export function drain(d: PoolData, helper: boolean): void {
  for (;;) {
    const w = Atomics.load(d.claim, 0);
    const idx = Number(w & IDX_MASK);
    const count = Number((w >> IDX_BITS) & IDX_MASK);
    if (idx >= count) return;
    if (Atomics.compareExchange(d.claim, 0, w, w + 1n) !== w) continue;
    try {
      runTask(d, idx);
    } catch (err) {
      console.error('GBDT task failed:', err);
      Atomics.store(d.ctrl, FAILED, 1);
    }
    if (helper) Atomics.add(d.ctrl, HELPED, 1);
    if (Atomics.add(d.ctrl, DONE, 1) + 1 === count) Atomics.notify(d.ctrl, DONE);
  }
}

/** The helper's loop: sleeps until a batch is posted, drains it, until the pool closes. */
export function helperLoop(d: PoolData): void {
  for (;;) {
    const seen = Atomics.load(d.ctrl, GEN);
    if (Atomics.load(d.ctrl, STOPPED)) return;
    drain(d, true);
    Atomics.wait(d.ctrl, GEN, seen);
  }
}

/** A typed array of `length` elements over shared memory when there are helpers, else plain. */
export function allocate<T extends Float64Array | Uint32Array | Uint8Array | Int32Array>(make: new (b: ArrayBufferLike) => T, bytesPer: number, length: number, shared: boolean): T {
  return new make(shared ? new SharedArrayBuffer(bytesPer * length) : new ArrayBuffer(bytesPer * length));
}

export class GbdtPool {
  private readonly workers: Worker[] = [];
  private readonly data: PoolData;
  private gen = 0n;

  /** `threads` counts this thread: threads − 1 helpers are started. */
  constructor(shared: GbdtShared, threads: number) {
    const multi = threads > 1;
    const claim = new BigInt64Array(multi ? new SharedArrayBuffer(8) : new ArrayBuffer(8));
    this.data = { ...shared, ctrl: allocate(Int32Array, 4, 8, multi), claim };
    try {
      for (let k = 1; k < threads; k++) {
        const w = new Worker(workerScript(), { workerData: this.data });
        live++;
        w.once('exit', () => live--);
        // A helper asleep in Atomics.wait must not keep a finished process alive.
        w.unref();
        this.workers.push(w);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Runs tasks [0, count) (already written to shared.tasks); returns when all are done. */
  run(count: number): void {
    if (count > MAX_TASKS) throw new Error(`too many GBDT tasks in one batch (${count})`);
    const { ctrl, claim } = this.data;
    Atomics.store(ctrl, DONE, 0);
    this.gen = (this.gen + 1n) & ((1n << (64n - 2n * IDX_BITS)) - 1n);
    Atomics.store(claim, 0, BigInt.asIntN(64, (this.gen << (2n * IDX_BITS)) | (BigInt(count) << IDX_BITS)));
    if (this.workers.length) {
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
    }
    drain(this.data, false);
    for (let d = Atomics.load(ctrl, DONE); d < count; d = Atomics.load(ctrl, DONE)) Atomics.wait(ctrl, DONE, d);
    if (Atomics.load(ctrl, FAILED)) throw new Error('a GBDT task failed (see its error on stderr)');
  }

  /** Stops every helper; safe to call twice. */
  close(): void {
    if (!this.workers.length) return;
    helped += Atomics.exchange(this.data.ctrl, HELPED, 0);
    Atomics.store(this.data.ctrl, STOPPED, 1);
    Atomics.add(this.data.ctrl, GEN, 1);
    Atomics.notify(this.data.ctrl, GEN);
    // terminate() too: a helper still booting would otherwise finish loading first.
    for (const w of this.workers.splice(0)) void w.terminate();
  }
}

/**
 * The helper's script: the compiled gbdt-worker.js beside this file when we run from the build,
 * else (TypeScript under jest or tsx) an entry that registers tsx first, since a worker thread
 * inherits no loader.
 */
function workerScript(): string {
  return __filename.endsWith('.js') ? path.join(__dirname, 'gbdt-worker.js') : path.join(__dirname, 'gbdt-worker-entry.js');
}
