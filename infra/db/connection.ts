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
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: new Pool(config) }) });
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
