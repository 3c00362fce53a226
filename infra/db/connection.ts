import { CompiledQuery, Kysely, PostgresDialect, type Transaction } from 'kysely';
import { Pool, type PoolConfig } from 'pg';
import { DB_SCHEMA_PATTERN, DEFAULT_DB_SCHEMA } from '../config';
import { ConfigError } from '../errors';
import type { Database } from './schema';

export type Db = Kysely<Database> | Transaction<Database>;

export interface DbOptions {
  /** Pool size. Embedded PGlite serves one session, so callers pass 1 for it. */
  max?: number;
  applicationName?: string;
  /**
   * The PostgreSQL schema our tables live in (`Config.databaseSchema`, default `mlops`). Every
   * session of the pool gets `search_path` set to this schema alone.
   */
  schema?: string;
}

/** Where to connect: a `postgres://` URL, or a pool the caller already has (see `createDb`). */
export type DbSource = string | { pool: Pool };

const schemas = new WeakMap<Kysely<Database>, string>();

/** The schema `createDb` bound this instance to; `undefined` for one it did not create (or a transaction). */
export function schemaOf(db: Kysely<Database>): string | undefined {
  return schemas.get(db);
}

/** Throws a ConfigError naming `schema` unless `schema` is a name we accept (see DB_SCHEMA_PATTERN). */
export function validateSchemaName(schema: string): string {
  if (!DB_SCHEMA_PATTERN.test(schema)) {
    throw new ConfigError(
      `schema: ${JSON.stringify(schema)} is not a valid PostgreSQL schema name (lowercase letters, digits and _, not starting with a digit, at most 63 characters)`,
    );
  }
  return schema;
}

/** `"name"`: a quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The connection settings of a pool the caller owns, for a pool of our own. pg-pool hides the
 * password (and `ssl.key`) as non-enumerable properties of `pool.options`, so a plain spread
 * would drop them: they are copied by name, and `ssl` is passed by reference (its hidden `key`
 * stays readable there). The pool's client class (e.g. pg-native) comes along too.
 */
export function connectionSettingsOf(pool: Pool): PoolConfig {
  const options: PoolConfig = pool.options;
  const copy: PoolConfig = { ...options };
  if ('password' in options) copy.password = options.password;
  if (options.ssl !== undefined) copy.ssl = options.ssl;
  const poolClient = (pool as unknown as { Client?: PoolConfig['Client'] }).Client;
  if (poolClient) copy.Client = poolClient;
  return copy;
}

/**
 * A kysely instance on the metadata store, whose every session has `search_path` set to
 * `opts.schema` (default `mlops`) and nothing else, so unqualified table names — in our queries
 * and in the migrations — resolve to our schema only, never to a user's table in `public`.
 *
 * We never change the session state of a pool that is not ours. Given a URL, we create our
 * own pool. Given `{ pool }` (a pool the caller already has), we do NOT borrow its sessions:
 * setting `search_path` on them would leak into the caller's own queries when the session goes
 * back to their pool. Instead we open a pool of our own with the same connection settings
 * (`pool.options`: host, port, user, password, ssl, database, client class…; `max` and
 * `application_name` can be overridden through `opts`). The caller's pool is left untouched and
 * is not closed by `db.destroy()`; ours is. This costs up to `max` connections more on the server.
 *
 * `search_path` is set with a plain `set` statement from kysely's `onCreateConnection` hook,
 * not a startup parameter, so it works with every server, embedded PGlite on a socket included.
 */
export function createDb(source: DbSource, opts: DbOptions = {}): Kysely<Database> {
  const schema = validateSchemaName(opts.schema ?? DEFAULT_DB_SCHEMA);
  let config: PoolConfig;
  if (typeof source === 'string') {
    config = {
      connectionString: source,
      max: opts.max ?? 10,
      connectionTimeoutMillis: 10_000,
      application_name: opts.applicationName ?? 'temporal-mlops',
    };
  } else {
    const theirs = connectionSettingsOf(source.pool);
    config = {
      ...theirs,
      max: opts.max ?? theirs.max ?? 10,
      connectionTimeoutMillis: theirs.connectionTimeoutMillis ?? 10_000,
      application_name: opts.applicationName ?? theirs.application_name ?? 'temporal-mlops',
    };
  }
  const pool = new Pool(config);
  // An idle pooled connection can be closed under us (server restart, failover, admin kill).
  // Without a listener pg re-throws that as an uncaught exception and takes the worker down;
  // the pool already discards the client and the next query opens a new one.
  pool.on('error', (err) => {
    process.stderr.write(`metadata store: idle connection lost (${err.message}); it will be replaced\n`);
  });
  // The same for a connection lost while a query runs on it: the query fails (and its step waits
  // the outage out), the event must not take the process down.
  pool.on('connect', (client) => {
    client.on('error', (err) => process.stderr.write(`metadata store: connection lost during a query (${err.message})\n`));
  });
  const setSearchPath = CompiledQuery.raw(`set search_path to ${quoteIdent(schema)}`);
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({
      pool,
      onCreateConnection: async (connection) => {
        await connection.executeQuery(setSearchPath);
      },
    }),
  });
  schemas.set(db, schema);
  return db;
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
