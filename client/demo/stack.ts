import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { TEMPORAL_CLI, resolveBinary } from '../../infra/binaries';
import { loadConfig } from '../../infra/config';
import { redactUrl } from '../../infra/db/connection';
import { UserFacingError, describeError } from '../../infra/errors';
import type { Logger } from '../../infra/log';
import { compiledEntry } from '../../infra/entry';
import { PROJECT_ROOT } from '../../infra/paths';
import { canConnect, startPglite } from '../../infra/postgres';
import { ManagedProcess, freePort, portIsFree, waitFor } from '../../infra/processes';
import { startTemporalDevServer, type TemporalDevServer } from '../../infra/services';

/**
 * The demo's own stack, started the way `npm run dev` starts one but always fresh: a Temporal dev
 * server with in-memory history, its own database (dropped and recreated) or a new PGlite,
 * artifacts and datasets under the demo's state folder, the workers (control, cpu, gpu on the
 * CPU) and the model server as child processes with a per-run admin token.
 */

export interface DemoStack {
  stateDir: string;
  dataDir: string;
  temporal: { address: string; uiUrl: string; namespace: string };
  databaseUrl: string;
  /** The PostgreSQL schema the children's metadata store lives in (MLOPS_DB_SCHEMA). */
  databaseSchema: string;
  databaseSource: 'local-server' | 'pglite';
  artifactRoot: string;
  modelServerUrl: string;
  adminToken: string;
  logs: { temporal: string; workers: string; modelServer: string };
  /** Child process ids, for the "nothing left running" check. */
  pids(): number[];
  ports(): number[];
  stop(): Promise<void>;
}

// Variables that would point the children at someone else's stores or Temporal.
const FOREIGN_ENV = [
  'DATABASE_URL',
  'ARTIFACT_ROOT',
  'S3_ENDPOINT',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_PROFILE',
  'MLOPS_MODEL_SERVER_URL',
  'MLOPS_ADMIN_TOKEN',
];

async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new PgClient({ connectionString: serverUrl, connectionTimeoutMillis: 2_000 });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    // `name` matched a strict identifier pattern; identifiers cannot be bound parameters.
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function logHas(file: string, text: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8').includes(text);
}

export async function startDemoStack(opts: { stateDir: string; database: string; log: Logger; signal: AbortSignal }): Promise<DemoStack> {
  const { log } = opts;
  const config = loadConfig();
  const stateDir = path.resolve(opts.stateDir);
  // Fresh every run: yesterday's versions and predictions would change today's story.
  await fs.rm(stateDir, { recursive: true, force: true });
  const dataDir = path.join(stateDir, 'data');
  const artifactDir = path.join(stateDir, 'artifacts');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.mkdir(artifactDir, { recursive: true });
  const logs = { temporal: path.join(stateDir, 'temporal.log'), workers: path.join(stateDir, 'workers.log'), modelServer: path.join(stateDir, 'model-server.log') };

  let temporal: TemporalDevServer | undefined;
  let pgliteClose: (() => Promise<void>) | undefined;
  let workers: ManagedProcess | undefined;
  let server: ManagedProcess | undefined;
  const ports: number[] = [];
  const stop = async () => {
    // Workers first (they may be mid-activity), then what they talk to.
    await workers?.stop(15_000);
    await server?.stop(10_000);
    await temporal?.process.stop();
    await pgliteClose?.().catch(() => undefined);
  };
  const aborted = () => {
    if (opts.signal.aborted) throw new UserFacingError('stopped during start-up');
  };

  try {
    const cli = await resolveBinary(TEMPORAL_CLI, config, log);
    aborted();
    // No --db-filename: history in memory, so every demo starts with an empty Temporal.
    temporal = await startTemporalDevServer({ cli: cli.path, stateDir, preferStandardPorts: true });
    ports.push(Number(temporal.address.split(':')[1]), Number(new URL(temporal.uiUrl).port));
    log.info(`Temporal dev server at ${temporal.address}, Web UI ${temporal.uiUrl}`);
    aborted();

    let databaseUrl: string;
    let databaseSource: DemoStack['databaseSource'];
    if (config.localPostgresUrl && (await canConnect(config.localPostgresUrl, 2_000))) {
      try {
        databaseUrl = await freshDatabase(config.localPostgresUrl, opts.database);
      } catch (err) {
        throw new UserFacingError(`PostgreSQL at ${redactUrl(config.localPostgresUrl)}: cannot recreate database ${opts.database}: ${describeError(err)}`);
      }
      databaseSource = 'local-server';
    } else {
      const pg = await startPglite({ ...config, stateDir }, log);
      pgliteClose = pg.close;
      databaseUrl = pg.url;
      databaseSource = 'pglite';
    }
    log.info(`PostgreSQL: ${redactUrl(databaseUrl)} (${databaseSource}, fresh)`);
    aborted();

    const adminToken = randomBytes(24).toString('base64url');
    const servePort = (await portIsFree(8000)) ? 8000 : await freePort();
    ports.push(servePort);
    const modelServerUrl = `http://127.0.0.1:${servePort}`;
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of FOREIGN_ENV) delete env[k];
    Object.assign(env, {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      DATABASE_URL: databaseUrl,
      MLOPS_DB_SCHEMA: config.databaseSchema,
      ARTIFACT_ROOT: artifactDir,
      MLOPS_STATE_DIR: stateDir,
      MLOPS_DATA_ROOTS: [...config.dataRoots, dataDir].join(','),
      MLOPS_MODEL_SERVER_URL: modelServerUrl,
      MLOPS_ADMIN_TOKEN: adminToken,
      MLOPS_SERVE_HOST: '127.0.0.1',
      MLOPS_SERVE_PORT: String(servePort),
      MLOPS_ALLOW_CPU: 'true',
      MLOPS_LOG_LEVEL: process.env.MLOPS_LOG_LEVEL ?? 'WARN',
    });
    // One plain node process each, from the compiled package.
    const node = (script: string, args: string[], logFile: string) =>
      ManagedProcess.start(path.basename(script, '.ts'), process.execPath, [compiledEntry(script), ...args], { logFile, env, cwd: PROJECT_ROOT });

    server = node('workers/model-server.ts', [], logs.modelServer);
    workers = node('workers/dev.ts', ['--queues', 'control,cpu,gpu', '--allow-cpu'], logs.workers);
    await waitFor(
      'model server',
      async () => {
        try {
          return (await fetch(`${modelServerUrl}/v2/health/ready`)).ok;
        } catch {
          return false;
        }
      },
      { timeoutMs: 90_000, proc: server },
    );
    log.info(`model server at ${modelServerUrl} (admin token generated for this run)`);
    aborted();
    // The workers log this once every queue is polled (workers/start.ts).
    await waitFor('workers', async () => logHas(logs.workers, 'polling '), { timeoutMs: 180_000, proc: workers });
    log.info('workers polling mlops-control, mlops-cpu, mlops-gpu (GPU queue on the CPU unless a GPU is present)');

    const t = temporal;
    const procs = [t.process, server, workers];
    return {
      stateDir,
      dataDir,
      temporal: { address: t.address, uiUrl: t.uiUrl, namespace: t.namespace },
      databaseUrl,
      databaseSchema: config.databaseSchema,
      databaseSource,
      artifactRoot: artifactDir,
      modelServerUrl,
      adminToken,
      logs,
      pids: () => procs.map((p) => p.pid).filter((p): p is number => p !== undefined),
      ports: () => [...ports],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
