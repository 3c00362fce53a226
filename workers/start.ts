import os from 'node:os';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { GpuPool } from '../activities/gpu-context';
import { UserFacingError } from '../infra/errors';
import type { Logger } from '../infra/log';
import { temporalSettings, unreachable, withTimeout, type TemporalSettings } from '../infra/temporal';
import { gpuClassQueue } from '../workflows/contracts/task-queues';
import { MlopsPlugin } from './plugin';
import { discoverGpus, gpuClassOf, type GpuDiscovery } from './gpu-discovery';
import type { QueueSelection } from './queues';
import type { WorkerRuntime } from './runtime';

let runtimeInstalled = false;

/** Installs the SDK runtime once: its logger level, and SIGINT/SIGTERM → graceful shutdown. */
export function installSdkRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (process.env.MLOPS_LOG_LEVEL ?? 'INFO').toUpperCase() as LogLevel;
  Runtime.install({ logger: new DefaultLogger(level), shutdownSignals: ['SIGINT', 'SIGTERM'] });
}

export async function connectWorkerToTemporal(log: Logger, settings: TemporalSettings = temporalSettings()): Promise<NativeConnection> {
  try {
    const connection = await withTimeout('Temporal', NativeConnection.connect(settings.connectionOptions), 15_000);
    log.info(`Temporal: connected to ${settings.address}, namespace ${settings.namespace}`);
    return connection;
  } catch (err) {
    throw unreachable(settings, err);
  }
}

function identity(queue: string): string {
  return `${queue}@${os.hostname()}:${process.pid}`;
}

/** Finds GPUs; without any, refuses unless the CPU fallback was asked for. */
export async function checkGpus(allowCpu: boolean): Promise<GpuDiscovery> {
  const found = await discoverGpus();
  if (found.gpus.length === 0 && !allowCpu) {
    throw new UserFacingError(
      `GPU worker: no GPUs found (${found.reason}); pass --allow-cpu (or MLOPS_ALLOW_CPU=true) to serve the GPU queues on the CPU for development`,
    );
  }
  return found;
}

export interface StartedWorkers {
  workers: Worker[];
  queues: string[];
  plugin: MlopsPlugin;
  /** The GPU workers' pool (its slot supplier is shared by both GPU queues' Workers), or 'cpu'; none without GPU queues. */
  gpus?: GpuPool | 'cpu';
  /** Resolves when every worker has stopped (after a signal or `shutdown()`). */
  run(): Promise<void>;
  shutdown(): void;
}

/** GPUs for the plugin's GPU workers: a pool of the GPUs found, or 'cpu' when allowed and none are. */
export async function discoverGpuPool(opts: { allowCpu?: boolean; log?: Logger; gpus?: GpuDiscovery } = {}): Promise<GpuPool | 'cpu'> {
  const found = opts.gpus ?? (await checkGpus(opts.allowCpu ?? false));
  return found.gpus.length === 0 ? 'cpu' : new GpuPool(found.gpus);
}

/**
 * Creates our own entry points' workers for the selected queues, through the same plugin a
 * user adds to their workers. The control worker runs every workflow and the light
 * activities; CPU and GPU workers run activities only. A GPU worker polls its class queue and
 * the generic GPU queue, sharing one pool and its slot supplier so that one GPU runs one
 * activity and neither queue's Worker takes a task while no GPU is free.
 */
export async function createWorkers(opts: {
  selection: QueueSelection;
  runtime: WorkerRuntime;
  connection: NativeConnection;
  namespace: string;
  allowCpu: boolean;
  log: Logger;
  /** GPUs found before connecting (see `checkGpus`); discovered here when not given. */
  gpus?: GpuDiscovery;
}): Promise<StartedWorkers> {
  const { selection, runtime, connection, namespace, log } = opts;
  const queueNames = runtime.config.taskQueues;
  let pool: GpuPool | 'cpu' | undefined;
  let gpuClass = selection.gpuClass ?? runtime.config.gpuClass;
  if (selection.gpu) {
    const found = opts.gpus ?? (await checkGpus(opts.allowCpu));
    pool = await discoverGpuPool({ gpus: found });
    if (pool === 'cpu') {
      log.warn('='.repeat(78));
      log.warn(`NO GPU: ${found.reason}. Serving ${queueNames.gpu}${gpuClass ? ` and ${gpuClassQueue(gpuClass, queueNames)}` : ''} ON THE CPU (--allow-cpu).`);
      log.warn('GPU steps will run, slowly, on this machine. Do not run this in production.');
      log.warn('='.repeat(78));
    } else {
      const classes = [...new Set(found.gpus.map((g) => gpuClassOf(g.name)))];
      gpuClass ??= classes[0];
      if (classes.length > 1) log.warn(`GPU worker: mixed GPU classes ${classes.join(', ')}; serving class ${gpuClass} (set MLOPS_GPU_CLASS to choose)`);
      for (const g of found.gpus) log.info(`GPU ${g.index}: ${g.name} (${g.memoryMiB} MiB, ${g.uuid})`);
    }
  }
  const plugin = new MlopsPlugin({
    config: runtime.config,
    taskQueues: runtime.config.taskQueues,
    database: { db: runtime.db, schema: runtime.config.databaseSchema },
    artifacts: runtime.artifacts,
    codeVersion: runtime.codeVersion,
    gpus: pool,
    // openRuntime migrated already.
    migrate: false,
    metrics: runtime.config.metrics,
    logger: log,
  });
  const workers: Worker[] = [];
  const create = (taskQueue: string, extra: Partial<WorkerOptions> = {}) =>
    Worker.create({ connection, namespace, taskQueue, identity: identity(taskQueue), plugins: [plugin], ...extra });

  if (selection.control) {
    const started = performance.now();
    workers.push(await create(queueNames.control));
    log.info(`worker ${identity(queueNames.control)}: workflows bundled in ${Math.round(performance.now() - started)} ms`);
  }
  if (selection.cpu) {
    workers.push(await create(queueNames.cpu, { maxConcurrentActivityTaskExecutions: Math.max(1, os.availableParallelism()) }));
  }
  if (selection.gpu && pool) {
    const queues = [queueNames.gpu, ...(gpuClass ? [gpuClassQueue(gpuClass, queueNames)] : [])];
    // The plugin gives both Workers the pool's one slot supplier: a GPU task is polled, on
    // either queue, only while a GPU is free.
    for (const queue of queues) workers.push(await create(queue));
    log.info(`GPU worker: ${pool === 'cpu' ? 'CPU only' : `${pool.size} GPU(s) shared by both queues' pollers (one slot per free GPU; resources.gpu GPUs per step)`}, polling ${queues.join(' and ')}`);
  }

  const queues = workers.map((w) => w.options.taskQueue);
  return {
    workers,
    queues,
    plugin,
    gpus: pool,
    run: async () => {
      log.info(`polling ${queues.join(', ')}`);
      await Promise.all(workers.map((w) => w.run()));
      log.info('workers stopped');
    },
    shutdown: () => {
      for (const w of workers) {
        if (w.getState() === 'RUNNING') w.shutdown();
      }
    },
  };
}
