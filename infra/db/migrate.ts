import { Migrator, sql, type Kysely, type MigrationResultSet } from 'kysely';
import { migrations } from './migrations';
import type { Database } from './schema';

// Any constant works; it only has to be the same for every process migrating this database.
const MIGRATION_LOCK_ID = 727_001_2026;

export interface MigrationOutcome {
  applied: string[];
  latest?: string;
}

/**
 * Applies every pending migration. Safe when several workers start at once: a session-level
 * advisory lock, taken on the same connection the migrator uses, serialises them, so the
 * second one finds nothing left to do (kysely's own lock table would race on first creation).
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationOutcome> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_ID})`.execute(conn);
    try {
      const migrator = new Migrator({
        db: conn,
        provider: { getMigrations: async () => migrations },
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
