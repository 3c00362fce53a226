import { Client as PgClient } from 'pg';
import { MINIO_SERVER, TEMPORAL_CLI, resolveBinary } from '../../infra/binaries';
import { loadConfig } from '../../infra/config';
import { ensureDatabase } from '../../infra/postgres';
import { createLogger } from '../../infra/log';
import { ensurePythonPackages } from '../../infra/python';
import { ALERTMANAGER, CHROMIUM, PROMETHEUS, PROMTOOL, ensureDebianTool } from '../../infra/debian-tools';
import { startMinio, type MinioServer } from '../../infra/services';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * The real services every integration test talks to, started once per `jest` run: a fresh
 * PostgreSQL database and a MinIO server on loopback. Temporal is started per test file with
 * @temporalio/testing pointed at the same `temporal` binary. In CI nothing may be skipped:
 * a service that cannot start fails the run.
 */
export interface SharedServices {
  databaseUrl: string;
  adminUrl: string;
  databaseName: string;
  minio: MinioServer;
  temporalCli: string;
  minioBinary: string;
  tmpDir: string;
}

export async function startSharedServices(): Promise<SharedServices> {
  const log = createLogger('test-setup');
  const config = loadConfig();
  const temporal = await resolveBinary(TEMPORAL_CLI, config, log);
  const minioBin = await resolveBinary(MINIO_SERVER, config, log);
  ensurePythonPackages(log);
  for (const tool of [PROMTOOL, PROMETHEUS, ALERTMANAGER, CHROMIUM]) ensureDebianTool(tool, log);
  const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-test-'));
  const minio = await startMinio({ binary: minioBin.path, dataDir: path.join(tmpDir, 'minio'), logDir: tmpDir });
  log.info(`MinIO at ${minio.endpoint} (data in ${tmpDir})`);

  const adminUrl = process.env.DATABASE_URL ?? config.localPostgresUrl ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const admin = new PgClient({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
  try {
    await admin.connect();
  } catch (err) {
    await minio.process.stop();
    throw new Error(`integration tests need PostgreSQL: cannot connect to ${adminUrl} (${(err as Error).message}); set DATABASE_URL`);
  }
  const databaseName = `mlops_test_${Date.now()}_${process.pid}`;
  const databaseUrl = await ensureDatabase(admin, adminUrl, databaseName);
  await admin.end();
  log.info(`PostgreSQL test database ${databaseName}`);
  return { databaseUrl, adminUrl, databaseName, minio, temporalCli: temporal.path, minioBinary: minioBin.path, tmpDir };
}

export async function stopSharedServices(s: SharedServices): Promise<void> {
  await s.minio.process.stop();
  if (!process.env.MLOPS_KEEP_TEST_DB) {
    const admin = new PgClient({ connectionString: s.adminUrl });
    await admin.connect();
    await admin.query(`drop database if exists "${s.databaseName}" with (force)`);
    await admin.end();
  }
  await fs.rm(s.tmpDir, { recursive: true, force: true });
}
