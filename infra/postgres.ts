import fs from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import type { Config } from './config';
import { ConfigError, describeError } from './errors';
import { redactUrl } from './db/connection';
import type { Logger } from './log';

export interface PostgresHandle {
  url: string;
  source: 'DATABASE_URL' | 'local-server' | 'pglite';
  /** Pool size to use: 1 for PGlite, which serves a single session. */
  maxConnections: number;
  close(): Promise<void>;
}

/** A connected client, or the connection error (the half-open client closed). */
export async function tryConnect(url: string, timeoutMs: number): Promise<Client> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/** Whether a server answers at `url` (for probing candidates; the error is not wanted). */
export async function canConnect(url: string, timeoutMs: number): Promise<boolean> {
  try {
    await (await tryConnect(url, timeoutMs)).end();
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the metadata store: DATABASE_URL if set (it must answer), else the local server
 * (its own database is created if missing), else embedded PGlite served on a Unix socket so
 * that every caller still speaks the Postgres protocol through `pg`.
 */
export async function resolvePostgres(config: Config, log: Logger): Promise<PostgresHandle> {
  if (config.databaseUrl) {
    try {
      const client = await tryConnect(config.databaseUrl, 5_000);
      await client.end();
    } catch (err) {
      throw new ConfigError(`DATABASE_URL: cannot connect to ${redactUrl(config.databaseUrl)}: ${describeError(err)}`);
    }
    log.info(`PostgreSQL: using DATABASE_URL ${redactUrl(config.databaseUrl)}`);
    return { url: config.databaseUrl, source: 'DATABASE_URL', maxConnections: 10, close: async () => undefined };
  }

  if (config.localPostgresUrl) {
    let admin: Client | undefined;
    try {
      admin = await tryConnect(config.localPostgresUrl, 2_000);
    } catch (err) {
      log.info(`PostgreSQL: no local server at ${redactUrl(config.localPostgresUrl)} (${describeError(err)})`);
    }
    if (admin) {
      try {
        const url = await ensureDatabase(admin, config.localPostgresUrl, config.databaseName);
        log.info(`PostgreSQL: using local server, database ${config.databaseName} (${redactUrl(url)})`);
        return { url, source: 'local-server', maxConnections: 10, close: async () => undefined };
      } finally {
        await admin.end();
      }
    }
  }

  return startPglite(config, log);
}

export async function ensureDatabase(admin: Client, serverUrl: string, name: string): Promise<string> {
  const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
  if (exists.rowCount === 0) {
    try {
      // Identifiers cannot be bound parameters; `name` is checked against a strict pattern.
      await admin.query(`create database "${name}"`);
    } catch (err) {
      // 42P04: another process created it between our check and our create.
      if ((err as { code?: string }).code !== '42P04') throw err;
    }
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function startPglite(config: Config, log: Logger): Promise<PostgresHandle> {
  const started = performance.now();
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const dataDir = path.join(config.stateDir, 'pglite', 'data');
  const socketDir = path.join(config.stateDir, 'pglite', 'run');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.mkdir(socketDir, { recursive: true });
  const socketPath = path.join(socketDir, '.s.PGSQL.5432');
  await fs.rm(socketPath, { force: true });
  const db = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 16 });
  await server.start();
  const url = `postgresql://postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}`;
  log.info(`PostgreSQL: no server found, started embedded PGlite (data ${dataDir}, socket ${socketPath}) in ${Math.round(performance.now() - started)} ms`);
  return {
    url,
    source: 'pglite',
    maxConnections: 1,
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}
