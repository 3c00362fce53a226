import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

/**
 * A data schema can be proposed before it is accepted: a span whose columns differ from the
 * model's schema stops its run and leaves the schema it has as a proposal, which
 * `mlops schema accept` turns into the model's next version. Existing schemas were accepted.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('data_schemas')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('accepted').check(sql`status in ('accepted', 'proposed')`))
    .addColumn('changes', 'jsonb')
    .addColumn('accepted_at', 'timestamptz')
    .addColumn('accepted_by', 'text')
    .execute();
  await sql`update data_schemas set accepted_at = created_at`.execute(db);
  // A schema may come back (columns removed, then restored): a version is identified by its
  // number; the same fingerprint twice in a row is still one row (see saveDataSchema).
  await db.schema.alterTable('data_schemas').dropConstraint('data_schemas_model_fingerprint_key').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('data_schemas').addUniqueConstraint('data_schemas_model_fingerprint_key', ['model_id', 'fingerprint']).execute();
  await db.schema.alterTable('data_schemas').dropColumn('status').dropColumn('changes').dropColumn('accepted_at').dropColumn('accepted_by').execute();
}
