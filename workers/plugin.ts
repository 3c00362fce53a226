import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SimplePlugin } from '@temporalio/plugin';
import type { ClientOptions } from '@temporalio/client';
import type { VersioningBehavior } from '@temporalio/common';
import type { BundleOptions, NativeConnection, ReplayWorkerOptions, Worker, WorkerOptions } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import type { Pool } from 'pg';
import { createActivities } from '../activities';
import { GpuPool, bindActivitiesToGpus } from '../activities/gpu-context';
import { TrainerRegistry, type AnyTrainer } from '../activities/training/trainers';
import { createArtifactStore, type ArtifactStore } from '../infra/artifacts';
import { encodedFailuresPath, withEncryption, type CodecKeyRing } from '../infra/codec';
import { codeVersion as resolveCodeVersion } from '../infra/code-version';
import { loadConfig, parseArtifactRoot, type Config, type S3Settings } from '../infra/config';
import { createDb, redactUrl } from '../infra/db/connection';
import { migrateToLatest } from '../infra/db/migrate';
import type { Database } from '../infra/db/schema';
import { ConfigError, UserFacingError, describeError } from '../infra/errors';
import { createLogger, type Logger } from '../infra/log';
import { startTracing, temporalTracingPlugin, type Tracing, type TracingOptions } from '../infra/tracing';
import { GPU_CLASS_PATTERN, resolveTaskQueues, type TaskQueues } from '../workflows/contracts/task-queues';
import { startWorkerMetrics, type BacklogSource, type RunningWorkerMetrics } from './metrics-server';
import { workflowMetricSinks } from './workflow-metrics';

/**
 * The temporal-mlops plugin, on the SDK's own plugin API. Add it to `Worker.create({ plugins })`
 * on each of our task queues (control, CPU, GPU) and to `new Client({ plugins })`:
 * - on the control queue it registers our workflows (beside the worker's own, if it has some)
 *   and every activity;
 * - on the CPU queue, the activities;
 * - on a GPU queue (`<gpu>` or `<gpu>-<class>`), the activities, each holding GPUs of the pool
 *   (`resources.gpu` of them; one by default), with one activity slot supplier for all the
 *   Workers on that pool.
 * Activities are built with the stores given here; the metadata store is migrated (in its own
 * PostgreSQL schema) before the first worker polls.
 */

export type DatabaseOption =
  /** A connection URL; we open our own pool. */
  | { url: string; schema?: string; maxConnections?: number }
  /** Your pool: its connection settings are reused for a pool of ours, so your sessions are never changed. */
  | { pool: Pool; schema?: string; maxConnections?: number }
  /** An already-open kysely instance on our schema (our own entry points and tests). */
  | { db: Kysely<Database>; schema: string };

export type ArtifactsOption =
  | ArtifactStore
  | {
      /** `s3://bucket/prefix` or a local folder / `file://` URL. */
      root: string;
      /** S3 endpoint and credentials; default: S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION. */
      s3?: { endpoint?: string; accessKeyId: string; secretAccessKey: string; region?: string };
    };

export interface MlopsPluginOptions {
  /** Queue names, or a prefix (`acme-ml` → `acme-ml-control`, `acme-ml-cpu`, `acme-ml-gpu`). Default prefix `mlops`. */
  taskQueues?: Partial<TaskQueues> & { prefix?: string };
  /** The metadata store and model registry. Default: DATABASE_URL. Required in production: there is no silent fallback. */
  database?: DatabaseOption;
  /** The artifact store. Default: ARTIFACT_ROOT (and its S3 settings), else `.state/artifacts`. */
  artifacts?: ArtifactsOption;
  /** The model server the promotion's deployment activities drive. Default: MLOPS_MODEL_SERVER_URL / MLOPS_ADMIN_TOKEN. */
  modelServer?: { url: string; adminToken?: string };
  /**
   * Trainers beyond the built-in ones (gbdt, logreg, command): TypeScript trainers
   * (`defineTrainer({ name, hyperparameters, train })`), run by the train step with heartbeats and
   * checkpoints like ours. A training spec names one with `trainer: "<name>"`.
   */
  trainers?: AnyTrainer[];
  /** External command trainers: name → argv (see examples/trainers); added to MLOPS_COMMAND_TRAINERS. */
  commandTrainers?: Record<string, string[]>;
  /** Folders a `file://` dataset may point into. Default: MLOPS_DATA_ROOTS, else the current folder and the OS temp folder. */
  dataRoots?: string[];
  /** GPUs for workers on GPU queues: a pool (see `discoverGpuPool`), or 'cpu' to serve them on the CPU (development). */
  gpus?: GpuPool | 'cpu';
  /** Code version in lineage and step-cache keys. Default: MLOPS_CODE_VERSION, git HEAD, package version. */
  codeVersion?: string;
  /**
   * Serve Prometheus `/metrics` for the Workers this plugin runs (one endpoint for all of them,
   * up while any runs): their steps, their workflows' retrain and promotion decisions, GPU
   * leases, and on a control worker the loops' figures and our queues' backlog. Default:
   * MLOPS_METRICS_PORT / MLOPS_METRICS_HOST when set, else off. A busy port falls back to a free
   * one (logged).
   */
  metrics?: { port: number; host?: string } | 'off';
  /**
   * Seal every payload (and failure message) with AES-256-GCM on the Workers and Clients this
   * plugin is added to: a key ring (see `parseKeyRing`), or 'off'. Default: MLOPS_CODEC_KEYS /
   * MLOPS_CODEC_KEYS_FILE when set, else off. Every process that reads the histories (workers,
   * clients, the mlops CLI, the webhook, `npm run codec-server`) needs the same keys.
   */
  encryption?: CodecKeyRing | 'off';
  /**
   * Worker Versioning: every Worker this plugin configures joins this Worker Deployment version,
   * and `temporal worker deployment set-current-version` sends new runs to it. Our workflows say
   * how they move between builds (continuousTraining and promotion stay PINNED to the build
   * they started on; modelLifecycle, monitoring and datasetWatcher AUTO_UPGRADE at their next
   * task); `defaultVersioningBehavior` is for the Worker's other workflows (default AUTO_UPGRADE).
   * Default: MLOPS_WORKER_DEPLOYMENT / MLOPS_WORKER_BUILD_ID (the build id defaults to the code
   * version) when set, else unversioned. A Worker given its own workerDeploymentOptions keeps them.
   */
  deployment?: { name: string; buildId?: string; defaultVersioningBehavior?: VersioningBehavior } | 'off';
  /**
   * OpenTelemetry tracing through `@temporalio/interceptors-opentelemetry`, exported over OTLP/HTTP:
   * spans of the Clients (StartWorkflow, SignalWorkflow, …), the workflows (RunWorkflow, StartActivity,
   * …) and the activities (RunActivity) this plugin configures, one trace from the client through
   * them; the model server calls our activities make carry it on (traceparent). `url` is the traces
   * URL (`http://collector:4318/v1/traces`); protocol http/protobuf (default) or http/json; service
   * name default `temporal-mlops-worker`. Default: the standard OTEL_* variables (on with
   * OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), else off. A prebuilt bundle
   * carries the workflow interceptors only if it was bundled with tracing on.
   */
  tracing?: TracingOptions | 'off';
  /** Apply pending migrations before the first worker polls (default true). */
  migrate?: boolean;
  /** Environment the defaults are read from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** A parsed configuration to start from instead of `env` (our own entry points pass theirs). */
  config?: Config;
  logger?: Logger;
}

type QueueRole = { role: 'control' | 'cpu' } | { role: 'gpu'; gpuClass?: string };

export const PLUGIN_NAME = 'temporal-mlops';

/** Our workflows module: compiled JavaScript in the package, TypeScript in a checkout under jest. */
function ourWorkflowsPath(): string {
  return require.resolve('../workflows');
}

function taskQueuesModulePath(): string {
  return require.resolve('../workflows/contracts/task-queues');
}

/**
 * Writes (once, content-addressed) the module a worker or `bundleWorkflowCode` bundles: it sets
 * our queue names inside the sandbox before any workflow module runs, then exports our workflows
 * and the user's own. Returns our own workflows path when there is nothing to add.
 */
export function workflowsEntry(queues: TaskQueues, userWorkflowsPath?: string, dir = generatedDir()): string {
  // Idempotent: an entry we generated already holds everything; our own workflows are no user's.
  if (userWorkflowsPath && path.resolve(userWorkflowsPath).startsWith(dir + path.sep)) return userWorkflowsPath;
  if (userWorkflowsPath && path.resolve(userWorkflowsPath) === ourWorkflowsPath()) userWorkflowsPath = undefined;
  const defaults = resolveTaskQueues();
  const customQueues = queues.control !== defaults.control || queues.cpu !== defaults.cpu || queues.gpu !== defaults.gpu;
  if (!customQueues && !userWorkflowsPath) return ourWorkflowsPath();
  const configure = `import { configureTaskQueues } from ${JSON.stringify(taskQueuesModulePath())};\nconfigureTaskQueues(${JSON.stringify(queues)});\n`;
  const configureFile = writeOnce(dir, 'queues', configure, '.js');
  const entry = [
    '// Generated by the temporal-mlops plugin: queue names first, then our workflows and yours.',
    `import ${JSON.stringify(configureFile)};`,
    `export * from ${JSON.stringify(ourWorkflowsPath())};`,
    ...(userWorkflowsPath ? [`export * from ${JSON.stringify(path.resolve(userWorkflowsPath))};`] : []),
    '',
  ].join('\n');
  return writeOnce(dir, 'workflows', entry, '.js');
}

/**
 * Where the generated modules go: node_modules/.cache of the tree that holds the SDK, because
 * the bundler resolves `@temporalio/workflow` (and what it injects) from the entry's folder.
 */
function generatedDir(): string {
  const sdk = require.resolve('@temporalio/workflow');
  const nodeModules = sdk.slice(0, sdk.lastIndexOf(`${path.sep}node_modules${path.sep}`) + `${path.sep}node_modules`.length);
  return path.join(nodeModules, '.cache', 'temporal-mlops-workflows');
}

function writeOnce(dir: string, stem: string, content: string, ext: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${stem}-${createHash('sha256').update(content).digest('hex').slice(0, 16)}${ext}`);
  try {
    if (readFileSync(file, 'utf8') === content) return file;
  } catch {
    // not written yet
  }
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, file);
  } catch (err) {
    throw new ConfigError(`temporal-mlops plugin: cannot write the generated workflows module in ${dir} (${(err as Error).message}); make that folder writable for the worker's user`);
  }
  return file;
}

function s3Settings(opt: { endpoint?: string; accessKeyId: string; secretAccessKey: string; region?: string }): S3Settings {
  const region = opt.region ?? 'us-east-1';
  const endpoint = new URL(opt.endpoint ?? `https://s3.${region}.amazonaws.com`);
  const useSSL = endpoint.protocol === 'https:';
  return { endPoint: endpoint.hostname, port: endpoint.port ? Number(endpoint.port) : useSSL ? 443 : 80, useSSL, accessKey: opt.accessKeyId, secretKey: opt.secretAccessKey, region };
}

/** The metadata store a plugin uses, and whether closing it is ours to do. */
interface OpenDatabase {
  db: Kysely<Database>;
  schema: string;
  describe: string;
  owned: boolean;
}

function openDatabase(opt: DatabaseOption | undefined, config: Config): OpenDatabase {
  if (opt && 'db' in opt) return { db: opt.db, schema: opt.schema, describe: `schema ${opt.schema}`, owned: false };
  const schema = opt?.schema ?? config.databaseSchema;
  if (opt && 'pool' in opt) {
    return { db: createDb({ pool: opt.pool }, { schema, max: opt.maxConnections }), schema, describe: `the given pool, schema ${schema}`, owned: true };
  }
  const url = opt?.url ?? config.databaseUrl;
  if (!url) {
    throw new ConfigError('no metadata store: set DATABASE_URL (postgres://…) or pass `database: { url | pool }` to the temporal-mlops plugin');
  }
  return { db: createDb(url, { schema, max: opt?.maxConnections }), schema, describe: `${redactUrl(url)}, schema ${schema}`, owned: true };
}

export class MlopsPlugin extends SimplePlugin {
  readonly taskQueues: TaskQueues;
  readonly config: Config;
  readonly db: Kysely<Database>;
  readonly schema: string;
  readonly artifacts: ArtifactStore;
  readonly codeVersion: string;
  readonly trainers: TrainerRegistry;
  private readonly database: OpenDatabase;
  private readonly log: Logger;
  private readonly gpus?: GpuPool | 'cpu';
  private readonly migrate: boolean;
  private readied?: Promise<void>;
  private readonly metricsAt: { port: number; host: string } | 'off';
  /** The Worker Deployment version our Workers join, when versioned. */
  readonly deployment?: { name: string; buildId: string; defaultVersioningBehavior: VersioningBehavior };
  /** The payload encryption keys, when on. */
  readonly encryption?: CodecKeyRing;
  /** This plugin's tracer provider and the SDK's OpenTelemetry plugin on it, when tracing is on. */
  readonly tracing?: Tracing;
  private readonly otel?: SimplePlugin;
  private metricsServer?: Promise<RunningWorkerMetrics | undefined>;
  private runningWorkers = 0;
  /** Queues of the Workers configured with this plugin, and the control Worker's connection. */
  private readonly configuredQueues = new Set<string>();
  private controlConnection?: { connection: NativeConnection; namespace: string };

  constructor(opts: MlopsPluginOptions = {}) {
    super({ name: PLUGIN_NAME });
    const base = opts.config ?? loadConfig(opts.env ?? process.env);
    try {
      this.taskQueues = opts.taskQueues ? resolveTaskQueues(opts.taskQueues) : base.taskQueues;
    } catch (err) {
      throw new ConfigError(`temporal-mlops plugin: ${(err as Error).message}`);
    }
    let artifactRoot = base.artifactRoot;
    let s3 = base.s3;
    if (opts.artifacts && !isArtifactStore(opts.artifacts)) {
      artifactRoot = parseArtifactRoot(opts.artifacts.root);
      if (opts.artifacts.s3) s3 = s3Settings(opts.artifacts.s3);
      if (artifactRoot.kind === 's3' && !s3) throw new ConfigError(`artifacts.root is ${artifactRoot.uri} but no S3 credentials were given (artifacts.s3, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)`);
    }
    this.config = {
      ...base,
      artifactRoot,
      s3,
      ...(opts.modelServer ? { modelServer: { url: opts.modelServer.url.replace(/\/$/, ''), adminToken: opts.modelServer.adminToken } } : {}),
      ...(opts.commandTrainers ? { commandTrainers: { ...base.commandTrainers, ...opts.commandTrainers } } : {}),
      ...(opts.dataRoots ? { dataRoots: opts.dataRoots.map((d) => path.resolve(d)) } : {}),
    };
    this.database = openDatabase(opts.database, this.config);
    this.db = this.database.db;
    this.schema = this.database.schema;
    this.artifacts = opts.artifacts && isArtifactStore(opts.artifacts) ? opts.artifacts : createArtifactStore(this.config);
    this.codeVersion = resolveCodeVersion(opts.codeVersion ?? this.config.codeVersion);
    try {
      this.trainers = new TrainerRegistry({ commandTrainers: this.config.commandTrainers, trainerEnv: this.config.trainerEnv }, opts.trainers ?? []);
    } catch (err) {
      throw new ConfigError(`temporal-mlops plugin: trainers: ${(err as Error).message}`);
    }
    this.log = opts.logger ?? createLogger('temporal-mlops');
    this.gpus = opts.gpus;
    this.migrate = opts.migrate ?? true;
    this.encryption = opts.encryption === 'off' ? undefined : (opts.encryption ?? this.config.codecKeys);
    const own = opts.deployment === 'off' ? undefined : opts.deployment;
    const deployment = opts.deployment === 'off' ? undefined : (own ?? this.config.workerDeployment);
    if (deployment) {
      this.deployment = { name: deployment.name, buildId: deployment.buildId ?? this.codeVersion, defaultVersioningBehavior: own?.defaultVersioningBehavior ?? 'AUTO_UPGRADE' };
    }
    const tracing = opts.tracing === 'off' ? undefined : (opts.tracing ?? this.config.tracing);
    if (tracing) {
      this.tracing = startTracing(tracing, { defaultServiceName: 'temporal-mlops-worker', log: this.log });
      this.otel = temporalTracingPlugin(this.tracing);
    }
    const env = opts.env ?? process.env;
    this.metricsAt =
      opts.metrics === undefined
        ? env.MLOPS_METRICS_PORT === undefined
          ? 'off'
          : base.metrics
        : opts.metrics === 'off'
          ? 'off'
          : { port: opts.metrics.port, host: opts.metrics.host ?? '127.0.0.1' };
  }

  /** What a worker on `taskQueue` serves, or a clear error if it is none of our queues. */
  roleOf(taskQueue: string): QueueRole {
    const q = this.taskQueues;
    if (taskQueue === q.control) return { role: 'control' };
    if (taskQueue === q.cpu) return { role: 'cpu' };
    if (taskQueue === q.gpu) return { role: 'gpu' };
    if (taskQueue.startsWith(`${q.gpu}-`) && GPU_CLASS_PATTERN.test(taskQueue.slice(q.gpu.length + 1))) return { role: 'gpu', gpuClass: taskQueue.slice(q.gpu.length + 1) };
    throw new ConfigError(
      `temporal-mlops plugin: a worker on task queue ${JSON.stringify(taskQueue)} serves none of ours (${q.control}, ${q.cpu}, ${q.gpu}, ${q.gpu}-<class>); add the plugin only to workers on those queues`,
    );
  }

  /** Our activities for a worker on `taskQueue`, built with this plugin's stores. */
  activitiesFor(taskQueue: string, identity: string): Record<string, (...args: never[]) => Promise<unknown>> {
    const role = this.roleOf(taskQueue);
    const activities = createActivities({ db: this.db, artifacts: this.artifacts, config: this.config, codeVersion: this.codeVersion, worker: { identity, queue: taskQueue }, trainers: this.trainers });
    if (role.role !== 'gpu') return activities;
    if (!this.gpus) {
      throw new ConfigError(
        `temporal-mlops plugin: the worker on GPU queue ${taskQueue} needs GPUs: pass \`gpus: await discoverGpuPool()\` (or \`gpus: 'cpu'\` to serve it on the CPU in development)`,
      );
    }
    return bindActivitiesToGpus(activities, this.gpus);
  }

  override configureWorker(options: WorkerOptions): WorkerOptions {
    const configured = this.configureOurWorker(options);
    // After ours: the workflows path is known, and with it whether the worker bundles (and so
    // takes the workflow interceptor module) or runs a bundle that was built with it.
    return this.otel ? this.otel.configureWorker(configured) : configured;
  }

  private configureOurWorker(options: WorkerOptions): WorkerOptions {
    const role = this.roleOf(options.taskQueue);
    this.configuredQueues.add(options.taskQueue);
    if (role.role === 'control' && options.connection) this.controlConnection ??= { connection: options.connection, namespace: options.namespace ?? 'default' };
    const identity = options.identity ?? `${options.taskQueue}@${os.hostname()}:${process.pid}`;
    const activities = { ...(options.activities as object | undefined), ...this.activitiesFor(options.taskQueue, identity) };
    const configured: WorkerOptions = {
      ...options,
      identity,
      activities,
      ...(this.encryption ? { dataConverter: withEncryption(options.dataConverter, this.encryption) } : {}),
      ...(role.role === 'gpu' ? this.gpuConcurrency(options) : {}),
      ...(this.deployment && !options.workerDeploymentOptions
        ? {
            workerDeploymentOptions: {
              useWorkerVersioning: true,
              version: { deploymentName: this.deployment.name, buildId: this.deployment.buildId },
              defaultVersioningBehavior: this.deployment.defaultVersioningBehavior,
            },
          }
        : {}),
    };
    if (role.role !== 'control') return configured;
    configured.sinks = { ...options.sinks, ...workflowMetricSinks() };
    // A prebuilt bundle must have been built with this plugin (bundleWorkflowCode({ plugins })).
    if (options.workflowBundle) return configured;
    // The worker hands its plugins to the bundler, where configureBundler adds the queue names
    // and merges the worker's own workflows with ours.
    return { ...configured, workflowsPath: options.workflowsPath ?? ourWorkflowsPath() };
  }

  /**
   * Activity slots of a Worker on a GPU queue. With a pool: the pool's slot supplier, one for
   * every Worker on this pool (the generic and the class queue alike), so together they never
   * start more GPU activities than there are GPUs, and poll only while one is free. A Worker
   * given its own `tuner` or `maxConcurrentActivityTaskExecutions` keeps it (the pool's leases
   * still keep one GPU to one activity). On 'cpu': one activity at a time per Worker.
   */
  private gpuConcurrency(options: WorkerOptions): Partial<WorkerOptions> {
    if (options.tuner !== undefined || options.maxConcurrentActivityTaskExecutions !== undefined) return {};
    if (!(this.gpus instanceof GpuPool)) return { maxConcurrentActivityTaskExecutions: 1 };
    // tuner excludes the max-concurrency options: their values become fixed-size suppliers.
    return {
      tuner: this.gpus.workerTuner({
        workflowTasks: options.maxConcurrentWorkflowTaskExecutions,
        localActivities: options.maxConcurrentLocalActivityExecutions,
        nexusTasks: options.maxConcurrentNexusTaskExecutions,
      }),
      maxConcurrentWorkflowTaskExecutions: undefined,
      maxConcurrentLocalActivityExecutions: undefined,
    };
  }

  override configureReplayWorker(options: ReplayWorkerOptions): ReplayWorkerOptions {
    // Replay calls no metric sink, but an unregistered one is logged as an error.
    const withSinks = {
      ...options,
      sinks: { ...options.sinks, ...workflowMetricSinks() },
      ...(this.encryption ? { dataConverter: withEncryption(options.dataConverter, this.encryption) } : {}),
    };
    // Replay bundles with the same interceptors as the live workers (the exporter sink is not
    // called during replay).
    const configured = options.workflowBundle ? withSinks : { ...withSinks, workflowsPath: options.workflowsPath ?? ourWorkflowsPath() };
    return this.otel ? this.otel.configureReplayWorker(configured) : configured;
  }

  override configureBundler(options: BundleOptions): BundleOptions {
    const configured = {
      ...options,
      workflowsPath: workflowsEntry(this.taskQueues, options.workflowsPath),
      // Sealed failures need the encoding failure converter inside the sandbox too.
      ...(this.encryption ? { failureConverterPath: options.failureConverterPath ?? encodedFailuresPath() } : {}),
    };
    // The workflow interceptor module, in bundles built at worker start and prebuilt ones alike.
    return this.otel ? this.otel.configureBundler(configured) : configured;
  }

  override configureClient(options: ClientOptions): ClientOptions {
    const configured = super.configureClient(options);
    const sealed = this.encryption ? { ...configured, dataConverter: withEncryption(configured.dataConverter, this.encryption) } : configured;
    return this.otel ? this.otel.configureClient(sealed) : sealed;
  }

  override async runWorker(worker: Worker, next: (w: Worker) => Promise<void>): Promise<void> {
    await this.ready();
    await this.serveMetrics();
    this.runningWorkers++;
    try {
      return await next(worker);
    } finally {
      // A stopped worker's last spans (its final activities, the workflow tasks it completed) go out now, not at the next batch.
      await this.tracing?.flush();
      if (--this.runningWorkers === 0) await this.closeMetrics();
    }
  }

  /**
   * Starts this plugin's /metrics (once; also done by the first Worker that runs) and returns
   * it, or undefined when metrics are off. It closes when the last Worker stops, or on closeMetrics.
   */
  serveMetrics(): Promise<RunningWorkerMetrics | undefined> {
    const at = this.metricsAt;
    if (at === 'off') return Promise.resolve(undefined);
    this.metricsServer ??= (async () => {
      const q = this.taskQueues;
      const options = {
        db: this.db,
        host: at.host,
        log: this.log,
        queues: () => [...this.configuredQueues],
        storeFigures: () => this.configuredQueues.has(q.control),
        gpus: () => ([...this.configuredQueues].some((name) => this.roleOf(name).role === 'gpu') ? this.gpus : undefined),
        backlog: (): BacklogSource | undefined =>
          this.controlConnection && {
            ...this.controlConnection,
            queues: () => [
              { name: q.control, types: ['workflow', 'activity'] },
              { name: q.cpu, types: ['activity'] },
              { name: q.gpu, types: ['activity'] },
              ...[...this.configuredQueues].filter((name) => name.startsWith(`${q.gpu}-`)).map((name) => ({ name, types: ['activity' as const] })),
            ],
          },
      };
      try {
        return await startWorkerMetrics({ ...options, port: at.port });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        this.log.warn(`metrics: port ${at.port} is in use; serving /metrics on a free port instead`);
        return startWorkerMetrics({ ...options, port: 0 });
      }
    })();
    this.metricsServer.catch(() => {
      this.metricsServer = undefined;
    });
    return this.metricsServer;
  }

  async closeMetrics(): Promise<void> {
    const running = this.metricsServer;
    this.metricsServer = undefined;
    await (await running?.catch(() => undefined))?.close();
  }

  /** Migrates the metadata store and prepares the artifact store, once per plugin. */
  ready(): Promise<void> {
    this.readied ??= (async () => {
      const started = performance.now();
      if (this.migrate) {
        let outcome;
        try {
          outcome = await migrateToLatest(this.db, this.schema);
        } catch (err) {
          throw new UserFacingError(`metadata store (${this.database.describe}): ${describeError(err)}`);
        }
        this.log.info(
          `metadata store ${this.database.describe}: ${outcome.applied.length ? `applied ${outcome.applied.join(', ')}` : 'schema up to date'} (${outcome.latest}) in ${Math.round(performance.now() - started)} ms`,
        );
      }
      try {
        await this.artifacts.ensureReady();
      } catch (err) {
        throw err instanceof UserFacingError ? err : new UserFacingError(`artifact store ${this.artifacts.root}: ${describeError(err)}`);
      }
      this.log.info(`artifact store: ${this.artifacts.root}`);
    })();
    this.readied.catch(() => {
      this.readied = undefined;
    });
    return this.readied;
  }

  /** Closes the metadata store pool if this plugin opened it, and exports the spans still buffered. */
  async close(): Promise<void> {
    await this.closeMetrics();
    await this.tracing?.shutdown();
    if (this.database.owned) await this.db.destroy();
  }
}

function isArtifactStore(a: ArtifactsOption): a is ArtifactStore {
  return typeof (a as ArtifactStore).putContent === 'function';
}

/** The plugin; also `new MlopsPlugin(options)`. */
export function mlopsPlugin(options: MlopsPluginOptions = {}): MlopsPlugin {
  return new MlopsPlugin(options);
}
