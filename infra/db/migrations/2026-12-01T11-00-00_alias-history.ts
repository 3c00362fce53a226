import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

/**
 * Every move of an alias, append-only: which version held it from when until when, which
 * workflow moved it and why. `model_aliases` stays the one-row-per-alias pointer; this table is
 * its history, written in the same transaction. `ended_by` says how a tenure ended, so a rollback
 * never returns to a version that was itself rolled back.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('alias_history')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id'))
    .addColumn('alias', 'text', (c) => c.notNull())
    .addColumn('model_version_id', 'bigint', (c) => c.notNull().references('model_versions.id'))
    .addColumn('previous_version_id', 'bigint', (c) => c.references('model_versions.id'))
    .addColumn('valid_from', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('valid_until', 'timestamptz')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('ended_by', 'text')
    .addColumn('moved_by', 'text')
    .addColumn('reason', 'text')
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  // At most one open tenure per alias: the pointer and its history cannot disagree.
  await sql`create unique index alias_history_open on alias_history (model_id, alias) where valid_until is null`.execute(db);
  await db.schema.createIndex('alias_history_model_alias').on('alias_history').columns(['model_id', 'alias', 'id']).execute();
  // What was already there becomes the first, open tenure.
  await sql`
    insert into alias_history (model_id, alias, model_version_id, valid_from, kind, moved_by, reason)
    select model_id, alias, model_version_id, updated_at, 'set', 'migration', 'alias as found when its history began'
    from model_aliases`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('alias_history').execute();
}
