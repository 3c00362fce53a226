import { randomUUID } from 'node:crypto';
import path from 'node:path';
import os from 'node:os';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client as MinioClient } from 'minio';
import { Client as PgClient } from 'pg';
import { loadConfig, type Config } from '../../infra/config';
import { DEV_SERVER_DISPATCH_CONFIG } from '../../infra/services';
import { quoteIdent, validateSchemaName } from '../../infra/db/connection';
import { createLogger } from '../../infra/log';
import type { PostgresHandle } from '../../infra/postgres';
import { openRuntime, type WorkerRuntime } from '../../workers/runtime';

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run integration tests through jest's integration project (global setup)`);
  return v;
}

export const testServices = {
  databaseUrl: () => need('MLOPS_TEST_DATABASE_URL'),
  s3Endpoint: () => need('MLOPS_TEST_S3_ENDPOINT'),
  s3AccessKey: () => need('MLOPS_TEST_S3_ACCESS_KEY'),
  s3SecretKey: () => need('MLOPS_TEST_S3_SECRET_KEY'),
  temporalCli: () => need('MLOPS_TEST_TEMPORAL_CLI'),
  minioBinary: () => need('MLOPS_TEST_MINIO_BINARY'),
};

/**
 * The PostgreSQL schema of this test file (this module is evaluated once per test file): test
 * files share one database, but not their metadata — in particular not their serving state, which
 * every model server on a schema follows (a server of one file could not load another file's
 * models, whose artifacts are in that file's bucket).
 */
const FILE_SCHEMA = `mlops_t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

/** Environment for a process that should use the test services, this test file's schema and a bucket of its own. */
export function testEnv(bucket = `t-${randomUUID().slice(0, 12)}`): NodeJS.ProcessEnv {
  return {
    DATABASE_URL: testServices.databaseUrl(),
    MLOPS_DB_SCHEMA: FILE_SCHEMA,
    ARTIFACT_ROOT: `s3://${bucket}/artifacts`,
    S3_ENDPOINT: testServices.s3Endpoint(),
    AWS_ACCESS_KEY_ID: testServices.s3AccessKey(),
    AWS_SECRET_ACCESS_KEY: testServices.s3SecretKey(),
    MLOPS_STATE_DIR: path.join(os.tmpdir(), `mlops-state-${bucket}`),
  };
}

export function testConfig(bucket?: string): Config {
  return loadConfig({ ...testEnv(bucket) });
}

/** A worker runtime on the test database and a fresh MinIO bucket; `overrides` point it elsewhere (a proxy, a MinIO of its own). */
export async function openTestRuntime(bucket?: string, overrides: NodeJS.ProcessEnv = {}): Promise<WorkerRuntime> {
  const config = loadConfig({ ...testEnv(bucket), ...overrides });
  const pg: PostgresHandle = { url: config.databaseUrl!, source: 'DATABASE_URL', maxConnections: 5, close: async () => undefined };
  return openRuntime(createLogger('test'), { config, pg });
}

/** A second, independent S3 client: assertions read what the server really holds. */
export function independentS3(): MinioClient {
  const u = new URL(testServices.s3Endpoint());
  return new MinioClient({
    endPoint: u.hostname,
    port: Number(u.port),
    useSSL: false,
    accessKey: testServices.s3AccessKey(),
    secretKey: testServices.s3SecretKey(),
    pathStyle: true,
  });
}

/**
 * A second, independent PostgreSQL connection for assertions, its `search_path` set to the
 * schema our tables live in (the test runtime's MLOPS_DB_SCHEMA: this test file's schema, unless given).
 */
export async function independentPg(schema: string = testConfig().databaseSchema): Promise<PgClient> {
  const c = new PgClient({ connectionString: testServices.databaseUrl() });
  await c.connect();
  try {
    await c.query(`set search_path to ${quoteIdent(validateSchemaName(schema))}`);
  } catch (err) {
    await c.end();
    throw err;
  }
  return c;
}

/**
 * A Temporal dev server of the test file's own, dispatching as fast as the dev stack's does;
 * `extraArgs` go to `temporal server start-dev` (e.g. `--dynamic-config-value`).
 */
export async function createTemporalEnv(extraArgs: string[] = []): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: testServices.temporalCli() },
      extraArgs: ['--log-level', 'error', ...DEV_SERVER_DISPATCH_CONFIG, ...extraArgs],
    },
  });
}
