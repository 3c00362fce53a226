import { parseArgs } from 'node:util';
import { loadConfig } from '../infra/config';
import { unmetRequirements } from '../infra/requirements';
import { ConfigError, UserFacingError } from '../infra/errors';
import { createLogger } from '../infra/log';
import { temporalSettings } from '../infra/temporal';
import { parseQueueList, type QueueSelection } from './queues';
import { openRuntime } from './runtime';
import { checkGpus, connectWorkerToTemporal, createWorkers, installSdkRuntime } from './start';

/**
 * Shared body of the worker entry points: parse flags, open the stores (migrating the
 * metadata store), connect to Temporal, poll until SIGINT/SIGTERM, then close everything.
 */
export async function workerMain(argv: string[], fixed?: QueueSelection, mode: { dev?: boolean } = {}): Promise<void> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        queues: { type: 'string' },
        'allow-cpu': { type: 'boolean', default: false },
        'gpu-class': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new UserFacingError((err as Error).message);
  }
  if (args.help) {
    process.stdout.write('usage: worker [--queues control,cpu,gpu[,gpu-<class>]] [--allow-cpu] [--gpu-class h100]\n');
    return;
  }
  const selection = fixed ? { ...fixed } : parseQueueList(args.queues ?? 'control,cpu');
  if (args['gpu-class']) selection.gpuClass = parseQueueList(`gpu-${args['gpu-class']}`).gpuClass;
  const log = createLogger('worker');
  const config = loadConfig();
  // A production worker never guesses its metadata store: the local-server and embedded PGlite
  // fallbacks belong to the dev entry points (npm run worker, npm run dev, the demo, tests).
  if (!mode.dev && !config.databaseUrl) {
    throw new ConfigError('no metadata store: set DATABASE_URL=postgres://… (this production worker does not fall back to a local server or embedded PGlite; `npm run worker` does)');
  }
  if (!mode.dev && fixed) {
    const script = fixed.control ? 'worker:control' : fixed.cpu ? 'worker:cpu' : 'worker:gpu';
    for (const unmet of unmetRequirements(script, config, process.env)) log.warn(`${script}: ${unmet} is not set`);
  }
  const settings = temporalSettings();
  const allowCpu = args['allow-cpu'] || config.allowCpu;
  // Cheap local checks before any connection, so a misconfigured worker fails in a second.
  const gpus = selection.gpu ? await checkGpus(allowCpu) : undefined;
  installSdkRuntime();
  // Temporal first: nothing is worth migrating if no server will ever send us work.
  const connection = await connectWorkerToTemporal(log, settings);
  const runtime = await openRuntime(log, { config });
  try {
    const started = await createWorkers({
      selection,
      runtime,
      connection,
      namespace: settings.namespace,
      allowCpu,
      log,
      gpus,
    });
    try {
      await started.plugin.serveMetrics();
      await started.run();
    } finally {
      await started.plugin.closeMetrics();
    }
  } finally {
    await runtime.close();
    await connection.close();
  }
}
