import { Migrator, sql, type Kysely, type MigrationResultSet } from 'kysely';
import { DEFAULT_DB_SCHEMA } from '../config';
import { ConfigError } from '../errors';
import { quoteIdent, schemaOf, validateSchemaName } from './connection';
import { migrations } from './migrations';
import type { Database } from './schema';

// Any constant works; it only has to be the same for every process migrating this database.
const MIGRATION_LOCK_ID = 727_001_2026;

export interface MigrationOutcome {
  applied: string[];
  latest?: string;
}

/**
 * Applies every pending migration in `schema` (`Config.databaseSchema`; by default the schema
 * `createDb` bound `db` to). Safe when several workers start at once: a session-level advisory
 * lock, taken on the same connection the migrator uses, serialises them, so the second one finds
 * nothing left to do (kysely's own lock table would race on first creation).
 *
 * The schema is created under that lock, and kysely's own tables (kysely_migration,
 * kysely_migration_lock) live in it too. The migrations create their tables unqualified: they
 * run on a session of `db`, whose `search_path` is the schema alone (see `createDb`), so that is
 * where they land — and, had the schema been missing, Postgres would refuse ("no schema has
 * been selected to create in") rather than fall back to `public`.
 */
export async function migrateToLatest(db: Kysely<Database>, schema: string = schemaOf(db) ?? DEFAULT_DB_SCHEMA): Promise<MigrationOutcome> {
  validateSchemaName(schema);
  const bound = schemaOf(db);
  if (bound !== undefined && bound !== schema) {
    // The migrations' tables would go to the session's schema, kysely's bookkeeping to the other.
    throw new ConfigError(`schema: asked to migrate ${JSON.stringify(schema)} through a connection bound to ${JSON.stringify(bound)} (pass the same schema to createDb)`);
  }
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_ID})`.execute(conn);
    try {
      // Looked up first: `create schema if not exists` checks the CREATE privilege on the database
      // even when the schema exists, and a role may own a schema an administrator made for it.
      const exists = await sql`select 1 from pg_namespace where nspname = ${schema}`.execute(conn);
      if (exists.rows.length === 0) await sql.raw(`create schema if not exists ${quoteIdent(schema)}`).execute(conn);
      // Where the migrations' unqualified `create table`s will land: it must be our schema.
      const { rows } = await sql<{ current: string | null }>`select current_schema() as current`.execute(conn);
      if (rows[0]?.current !== schema) {
        throw new ConfigError(
          `schema: this session creates tables in ${JSON.stringify(rows[0]?.current ?? null)}, not ${JSON.stringify(schema)}: migrate through a db from createDb(…, { schema: ${JSON.stringify(schema)} })`,
        );
      }
      const migrator = new Migrator({
        db: conn,
        provider: { getMigrations: async () => migrations },
        migrationTableSchema: schema,
      });
      const result: MigrationResultSet = await migrator.migrateToLatest();
      if (result.error) {
        const failed = result.results?.find((r) => r.status === 'Error');
        const reason = result.error instanceof Error ? result.error.message : String(result.error);
        throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${reason}`);
      }
      const applied = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
      const names = Object.keys(migrations).sort();
      return { applied, latest: names[names.length - 1] };
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`.execute(conn);
    }
  });
}
