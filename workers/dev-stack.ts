import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { NativeConnection } from '@temporalio/worker';
import { connectWorkerToTemporal, createWorkers, installSdkRuntime, type StartedWorkers } from './start';
import { parseQueueList } from './queues';
import { openRuntime, type WorkerRuntime } from './runtime';
import { MINIO_SERVER, TEMPORAL_CLI, resolveBinary } from '../infra/binaries';
import { loadConfig } from '../infra/config';
import { redactUrl } from '../infra/db/connection';
import { UserFacingError, runMain } from '../infra/errors';
import { createLogger } from '../infra/log';
import { resolvePostgres, type PostgresHandle } from '../infra/postgres';
import { canConnect } from '../infra/processes';
import { startMinio, startTemporalDevServer, type MinioServer, type TemporalDevServer } from '../infra/services';
import { Supervisor } from '../infra/supervisor';
import { temporalSettings } from '../infra/temporal';
import { shutdownTracing, startTracing } from '../infra/tracing';
import { startModelServer, type RunningModelServer } from './serving/server';
import { portInUse, serverOptions, servingSettings } from './serving/settings';
import { startWebhookServer, type RunningWebhook } from './triggers/webhook';
import type { RunningWorkerMetrics } from './metrics-server';
import { startRegistryWeb, type RegistryWeb } from '../client/web/site';
import { Client, Connection } from '@temporalio/client';

/**
 * `npm run dev`: starts whatever is missing (Temporal dev server, MinIO when asked, PGlite
 * when no PostgreSQL answers), migrates, runs the workers in this process, prints every
 * endpoint, and on Ctrl-C stops all of it — workers first, then the servers it started.
 */
async function main(): Promise<void> {
  const { values: args } = parseArgs({
    args: process.argv.slice(2),
    options: {
      s3: { type: 'boolean', default: false },
      temporal: { type: 'string', default: 'auto' },
      queues: { type: 'string', default: 'control,cpu,gpu' },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help) {
    process.stdout.write(
      [
        'usage: npm run dev [-- --s3] [--queues control,cpu,gpu] [--temporal auto|start]',
        '  --s3                 start a local MinIO and keep artifacts there',
        '  --temporal start     always start a dev server (auto: reuse one answering on 127.0.0.1:7233)',
        '',
      ].join('\n'),
    );
    return;
  }
  if (args.temporal !== 'auto' && args.temporal !== 'start') throw new UserFacingError('--temporal: expected auto or start');
  const log = createLogger('dev');
  const selection = parseQueueList(args.queues);
  let config = loadConfig();

  let stopping = false;
  let temporal: TemporalDevServer | undefined;
  let minio: MinioServer | undefined;
  let pg: PostgresHandle | undefined;
  let connection: NativeConnection | undefined;
  let runtime: WorkerRuntime | undefined;
  let workers: StartedWorkers | undefined;
  let server: RunningModelServer | undefined;
  let webhook: RunningWebhook | undefined;
  let metrics: RunningWorkerMetrics | undefined;
  let ui: RegistryWeb | undefined;
  let clientConnection: Connection | undefined;

  // A service that keeps dying (or cannot start again) ends the stack with the reason.
  let gaveUp: string | undefined;
  const supervisor = new Supervisor(log, (reason) => {
    gaveUp = reason;
    stopping = true;
    workers?.shutdown();
  });

  // Called from the signal handler during start-up and from `finally`: stop only once.
  let stopped: Promise<void> | undefined;
  const stopAll = () => (stopped ??= stopEverything());
  const stopEverything = async () => {
    supervisor.stop();
    workers?.shutdown();
    await webhook?.close().catch(() => undefined);
    await metrics?.close().catch(() => undefined);
    await ui?.close().catch(() => undefined);
    await clientConnection?.close().catch(() => undefined);
    // After the workers: a promotion step in flight still reaches the server while it drains.
    await server?.close().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    await runtime?.close().catch(() => undefined);
    await shutdownTracing();
    await pg?.close().catch(() => undefined);
    await minio?.process.stop();
    await temporal?.process.stop();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    log.info(`${signal}: stopping workers and services…`);
    // Before the workers run, nothing else is waiting on them: stop here and exit.
    if (!workers) void stopAll().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const checkStopping = () => {
    if (stopping) throw new UserFacingError(gaveUp ? `the dev stack stopped: ${gaveUp}` : 'stopped during start-up');
  };

  try {
    // Temporal: an explicit TEMPORAL_ADDRESS must answer; otherwise reuse one on :7233 or start one.
    if (process.env.TEMPORAL_ADDRESS) {
      log.info(`Temporal: using TEMPORAL_ADDRESS=${process.env.TEMPORAL_ADDRESS}`);
    } else if (args.temporal === 'auto' && (await canConnect('127.0.0.1', 7233))) {
      log.info('Temporal: a server already answers on 127.0.0.1:7233; using it');
      process.env.TEMPORAL_ADDRESS = '127.0.0.1:7233';
    } else {
      const cli = await resolveBinary(TEMPORAL_CLI, config, log);
      checkStopping();
      temporal = await startTemporalDevServer({
        cli: cli.path,
        stateDir: config.stateDir,
        dbFilename: path.join(config.stateDir, 'temporal.db'),
        preferStandardPorts: true,
      });
      process.env.TEMPORAL_ADDRESS = temporal.address;
      log.info(`Temporal: started dev server at ${temporal.address} (history kept in ${path.join(config.stateDir, 'temporal.db')})`);
      const first = temporal;
      const [grpc, ui, metrics] = [Number(first.address.split(':')[1]), Number(new URL(first.uiUrl).port), Number(new URL(first.metricsUrl).port)];
      supervisor.watch('Temporal dev server', first.process, async () => {
        temporal = await startTemporalDevServer({ cli: cli.path, stateDir: config.stateDir, dbFilename: path.join(config.stateDir, 'temporal.db'), ports: { grpc, ui, metrics } });
        return temporal.process;
      });
    }
    checkStopping();

    if (args.s3 && !process.env.ARTIFACT_ROOT) {
      const bin = await resolveBinary(MINIO_SERVER, config, log);
      checkStopping();
      minio = await startMinio({ binary: bin.path, dataDir: path.join(config.stateDir, 'minio'), logDir: config.stateDir, preferStandardPort: true });
      Object.assign(process.env, {
        ARTIFACT_ROOT: 's3://mlops-artifacts',
        S3_ENDPOINT: minio.endpoint,
        AWS_ACCESS_KEY_ID: minio.accessKey,
        AWS_SECRET_ACCESS_KEY: minio.secretKey,
      });
      config = loadConfig();
      log.info(`MinIO: started at ${minio.endpoint}`);
      const port = Number(new URL(minio.endpoint).port);
      supervisor.watch('MinIO', minio.process, async () => {
        minio = await startMinio({ binary: bin.path, dataDir: path.join(config.stateDir, 'minio'), logDir: config.stateDir, port });
        return minio.process;
      });
    }
    checkStopping();

    pg = await resolvePostgres(config, log);
    checkStopping();
    const settings = temporalSettings();
    installSdkRuntime();
    connection = await connectWorkerToTemporal(log, settings);
    runtime = await openRuntime(log, { config, pg });
    checkStopping();
    // The model server, on the same store and artifacts as the workers: promotions deploy to it
    // with nothing set by hand. A token is made up when none is given (and printed below).
    const adminToken = config.modelServer.adminToken ?? randomBytes(18).toString('base64url');
    // As `npm run serve` reads them, with OIP over gRPC beside REST on KServe's port by default.
    const serveSettings = servingSettings(process.env, { grpcPort: 8081 });
    const serving = { ...serverOptions(serveSettings), onnxDevice: config.onnxDevice };
    // Its spans as their own service, as `npm run serve` would export them.
    const tracer = config.tracing && startTracing(config.tracing, { defaultServiceName: 'mlops-serve', log: createLogger('serve') }).tracer;
    try {
      server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('serve'), ...serving, adminToken, tracer });
    } catch (err) {
      const inUse = portInUse(err, serveSettings);
      if (!inUse) throw err;
      log.warn(`model server: ${inUse}; serving on free ports instead`);
      server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('serve'), ...serving, port: 0, grpcPort: serving.grpcPort === undefined ? undefined : 0, adminToken, tracer });
    }
    runtime.config.modelServer = { url: server.url, adminToken };
    checkStopping();
    workers = await createWorkers({ selection, runtime, connection, namespace: settings.namespace, allowCpu: true, log });
    if (config.webhook.token) {
      clientConnection = await Connection.connect(settings.connectionOptions);
      webhook = await startWebhookServer({
        // Through the workers' plugin: payloads sealed and calls traced like theirs.
        client: new Client({ connection: clientConnection, namespace: settings.namespace, plugins: [workers.plugin] }),
        token: config.webhook.token,
        port: config.webhook.port,
        host: config.webhook.host,
        log: createLogger('webhook'),
        taskQueue: runtime.config.taskQueues.control,
      });
    }
    // The plugin's endpoint (MLOPS_METRICS_PORT): the same one a user's own Workers get.
    metrics = await workers.plugin.serveMetrics();
    // The registry page, behind the model server's admin token like the admin API.
    const uiAt = (port: number) =>
      startRegistryWeb({ db: runtime!.db, port, host: config.ui.host, token: adminToken, temporalUi: temporal ? temporal.uiUrl : config.temporalUiUrl, namespace: settings.namespace, log: createLogger('ui') });
    const registryWeb = await uiAt(config.ui.port).catch((err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? uiAt(0) : Promise.reject(err)));
    ui = registryWeb;
    const s3Env = minio ? `ARTIFACT_ROOT=s3://mlops-artifacts S3_ENDPOINT=${minio.endpoint} AWS_ACCESS_KEY_ID=${minio.accessKey} AWS_SECRET_ACCESS_KEY=${minio.secretKey}` : '';

    const lines = [
      '',
      'temporal-mlops dev stack is up',
      `  Temporal gRPC    ${settings.address}   (namespace ${settings.namespace})`,
      `  Temporal Web UI  ${temporal ? temporal.uiUrl : '(the UI of the server you pointed at)'}`,
      `  PostgreSQL       ${redactUrl(pg.url)}   (${pg.source})`,
      `  Artifacts        ${runtime.artifacts.root}`,
      `  S3 endpoint      ${minio ? `${minio.endpoint}  (access key ${minio.accessKey})` : config.s3 ? `${config.s3.useSSL ? 'https' : 'http'}://${config.s3.endPoint}:${config.s3.port}` : '(none; artifacts on local disk — `npm run dev -- --s3` starts MinIO)'}`,
      `  Workers          ${workers.queues.join(', ')}`,
      `  Model server     ${server.url}   (OIP REST; admin token ${config.modelServer.adminToken ? 'from MLOPS_ADMIN_TOKEN' : adminToken})`,
      `  OIP gRPC         ${server.grpcUrl ?? '(off: MLOPS_SERVE_GRPC_PORT=off)'}`,
      `  Webhook          ${webhook ? webhook.url : '(off; set MLOPS_WEBHOOK_TOKEN to run it here)'}`,
      `  Registry page    ${registryWeb.url}/?token=${config.modelServer.adminToken ? '<MLOPS_ADMIN_TOKEN>' : adminToken}`,
      `  Metrics          ${metrics ? `${metrics.url}/metrics (workers), ${server.url}/metrics (model server)` : '(off: MLOPS_METRICS_PORT=off)'}${temporal ? `, ${temporal.metricsUrl} (Temporal)` : ''}`,
      ...(minio ? [`  MinIO keys       access ${minio.accessKey}, secret ${minio.secretKey}`, '', 'A second model server on the same store (another terminal):', `  DATABASE_URL=${pg.url.startsWith('postgres') ? redactUrl(pg.url) : '<the PostgreSQL above>'} ${s3Env} MLOPS_SERVE_PORT=8001 npm run serve`] : []),
      '',
      'Try it from another terminal:',
      `  ${settings.address === '127.0.0.1:7233' ? '' : `TEMPORAL_ADDRESS=${settings.address} `}temporal workflow execute --task-queue mlops-control --type platformCheck --input '{}'`,
      'Ctrl-C stops everything.',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (stopping) workers.shutdown();
    await workers.run();
    if (gaveUp) throw new UserFacingError(`the dev stack stopped: ${gaveUp}`);
  } finally {
    await stopAll();
    log.info('stopped');
  }
}

runMain(main);
