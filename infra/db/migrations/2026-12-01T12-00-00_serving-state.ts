import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

/**
 * Serving state in PostgreSQL, the one source of truth every model-server replica follows:
 *
 * - `serving_traffic`: one row per served model — stable, canary (with its weight) and shadow
 *   versions — and a `generation` drawn from `serving_generation_seq` at every change of the
 *   model's traffic or of its version set, so it increases per model (and across models).
 * - `serving_versions`: the versions a model's servers must hold loaded (the traffic's versions
 *   are always among them; a deployed or standby version stays until it is unloaded).
 * - `model_servers`: each running server process, its heartbeat and the generation it has
 *   applied per model (`applied`: `{"<model_id>": generation}`), what it is missing and why.
 * - `serving_errors`: failed inference requests per server, version, role and one-second
 *   bucket, upserted, so a time window can be counted across replicas.
 *
 * Existing `production` aliases become the stable traffic, so a server started after this
 * migration serves what it served before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create sequence serving_generation_seq`.execute(db);

  await db.schema
    .createTable('serving_traffic')
    .addColumn('model_id', 'bigint', (c) => c.primaryKey().references('models.id'))
    .addColumn('stable_version_id', 'bigint', (c) => c.references('model_versions.id'))
    .addColumn('canary_version_id', 'bigint', (c) => c.references('model_versions.id'))
    .addColumn('canary_weight', 'real', (c) => c.notNull().defaultTo(0).check(sql`canary_weight >= 0 and canary_weight <= 100`))
    .addColumn('shadow_version_id', 'bigint', (c) => c.references('model_versions.id'))
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addCheckConstraint('serving_traffic_canary_needs_stable', sql`stable_version_id is not null or (canary_version_id is null and shadow_version_id is null)`)
    .execute();

  await db.schema
    .createTable('serving_versions')
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id'))
    .addColumn('model_version_id', 'bigint', (c) => c.notNull().references('model_versions.id'))
    .addColumn('added_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('added_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('serving_versions_pkey', ['model_id', 'model_version_id'])
    .execute();

  await db.schema
    .createTable('model_servers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('pid', 'integer')
    .addColumn('heartbeat_ms', 'integer', (c) => c.notNull().check(sql`heartbeat_ms > 0`))
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('stopped_at', 'timestamptz')
    .addColumn('ready', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('applied', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('missing', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('load_errors', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  await db.schema.createIndex('model_servers_seen_idx').on('model_servers').column('seen_at').execute();

  await db.schema
    .createTable('serving_errors')
    .addColumn('server_id', 'text', (c) => c.notNull())
    .addColumn('model_version_id', 'bigint', (c) => c.notNull().references('model_versions.id'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('bucket', 'timestamptz', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull().check(sql`count >= 0`))
    .addPrimaryKeyConstraint('serving_errors_pkey', ['server_id', 'model_version_id', 'role', 'bucket'])
    .execute();
  await db.schema.createIndex('serving_errors_version_role_bucket_idx').on('serving_errors').columns(['model_version_id', 'role', 'bucket']).execute();

  await sql`
    insert into serving_traffic (model_id, stable_version_id, canary_weight, generation, updated_by)
    select model_id, model_version_id, 0, nextval('serving_generation_seq'), 'migration' from model_aliases where alias = 'production'
  `.execute(db);
  await sql`
    insert into serving_versions (model_id, model_version_id, added_by)
    select model_id, model_version_id, 'migration' from model_aliases where alias = 'production'
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['serving_errors', 'model_servers', 'serving_versions', 'serving_traffic']) await db.schema.dropTable(t).ifExists().execute();
  await sql`drop sequence if exists serving_generation_seq`.execute(db);
}
