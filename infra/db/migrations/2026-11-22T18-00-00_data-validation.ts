import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

/** Versioned data schemas per model, and the statistics of every data span seen. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('data_schemas')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('schema', 'jsonb', (c) => c.notNull())
    .addColumn('source_snapshot_sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('data_schemas_model_version_key', ['model_id', 'version'])
    .addUniqueConstraint('data_schemas_model_fingerprint_key', ['model_id', 'fingerprint'])
    .execute();

  await db.schema
    .createTable('data_spans')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id').onDelete('cascade'))
    .addColumn('snapshot_sha256', 'text', (c) => c.notNull())
    .addColumn('schema_version', 'integer', (c) => c.notNull())
    .addColumn('rows', 'bigint', (c) => c.notNull())
    .addColumn('statistics', 'jsonb', (c) => c.notNull())
    .addColumn('report', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('data_spans_model_snapshot_key', ['model_id', 'snapshot_sha256'])
    .execute();
  await sql`create index data_spans_model_created_idx on data_spans (model_id, created_at desc)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('data_spans').execute();
  await db.schema.dropTable('data_schemas').execute();
}
