import os from 'node:os';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { GpuPool, bindActivitiesToGpus } from '../activities/gpu-context';
import { createActivities } from '../activities';
import { UserFacingError } from '../infra/errors';
import type { Logger } from '../infra/log';
import { temporalSettings, unreachable, withTimeout, type TemporalSettings } from '../infra/temporal';
import { TASK_QUEUES, gpuClassQueue } from '../workflows/definitions';
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
  /** Resolves when every worker has stopped (after a signal or `shutdown()`). */
  run(): Promise<void>;
  shutdown(): void;
}

/**
 * Creates the workers for the selected queues. The control worker runs every workflow and
 * the light activities; CPU and GPU workers run activities only. A GPU worker polls its class
 * queue and the generic GPU queue, sharing one pool so that one GPU runs one activity.
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
  const workers: Worker[] = [];
  const deps = (queue: string) => ({ db: runtime.db, artifacts: runtime.artifacts, config: runtime.config, codeVersion: runtime.codeVersion, worker: { identity: identity(queue), queue } });

  if (selection.control) {
    const started = performance.now();
    workers.push(
      await Worker.create({
        connection,
        namespace,
        taskQueue: TASK_QUEUES.control,
        identity: identity(TASK_QUEUES.control),
        workflowsPath: require.resolve('../workflows'),
        activities: createActivities(deps(TASK_QUEUES.control)),
      }),
    );
    log.info(`worker ${identity(TASK_QUEUES.control)}: workflows bundled in ${Math.round(performance.now() - started)} ms`);
  }
  if (selection.cpu) {
    workers.push(
      await Worker.create({
        connection,
        namespace,
        taskQueue: TASK_QUEUES.cpu,
        identity: identity(TASK_QUEUES.cpu),
        activities: createActivities(deps(TASK_QUEUES.cpu)),
        maxConcurrentActivityTaskExecutions: Math.max(1, os.availableParallelism()),
      }),
    );
  }
  if (selection.gpu) {
    const found = opts.gpus ?? (await checkGpus(opts.allowCpu));
    let pool: GpuPool | 'cpu';
    let gpuClass = selection.gpuClass ?? runtime.config.gpuClass;
    if (found.gpus.length === 0) {
      pool = 'cpu';
      log.warn('='.repeat(78));
      log.warn(`NO GPU: ${found.reason}. Serving ${TASK_QUEUES.gpu}${gpuClass ? ` and ${gpuClassQueue(gpuClass)}` : ''} ON THE CPU (--allow-cpu).`);
      log.warn('GPU steps will run, slowly, on this machine. Do not run this in production.');
      log.warn('='.repeat(78));
    } else {
      pool = new GpuPool(found.gpus);
      const classes = [...new Set(found.gpus.map((g) => gpuClassOf(g.name)))];
      gpuClass ??= classes[0];
      if (classes.length > 1) log.warn(`GPU worker: mixed GPU classes ${classes.join(', ')}; serving class ${gpuClass} (set MLOPS_GPU_CLASS to choose)`);
      for (const g of found.gpus) log.info(`GPU ${g.index}: ${g.name} (${g.memoryMiB} MiB, ${g.uuid})`);
    }
    const slots = pool === 'cpu' ? 1 : pool.size;
    const queues = [TASK_QUEUES.gpu, ...(gpuClass ? [gpuClassQueue(gpuClass)] : [])];
    for (const queue of queues) {
      workers.push(
        await Worker.create({
          connection,
          namespace,
          taskQueue: queue,
          identity: identity(queue),
          activities: bindActivitiesToGpus(createActivities(deps(queue)), pool),
          maxConcurrentActivityTaskExecutions: slots,
        }),
      );
    }
    log.info(`GPU worker: ${pool === 'cpu' ? 'CPU only' : `${slots} GPU(s), one activity each`}, polling ${queues.join(' and ')}`);
  }

  const queues = workers.map((w) => w.options.taskQueue);
  return {
    workers,
    queues,
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
