import { Kysely, PostgresDialect, type Transaction } from 'kysely';
import { Pool, type PoolConfig } from 'pg';
import type { Database } from './schema';

export type Db = Kysely<Database> | Transaction<Database>;

export interface DbOptions {
  /** Pool size. Embedded PGlite serves one session, so callers pass 1 for it. */
  max?: number;
  applicationName?: string;
}

export function createDb(url: string, opts: DbOptions = {}): Kysely<Database> {
  const config: PoolConfig = {
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: 10_000,
    application_name: opts.applicationName ?? 'temporal-mlops',
  };
  const pool = new Pool(config);
  // An idle pooled connection can be closed under us (server restart, failover, admin kill).
  // Without a listener pg re-throws that as an uncaught exception and takes the worker down;
  // the pool already discards the client and the next query opens a new one.
  pool.on('error', (err) => {
    process.stderr.write(`metadata store: idle connection lost (${err.message}); it will be replaced\n`);
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** `postgres://user:***@host:port/db` — for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
