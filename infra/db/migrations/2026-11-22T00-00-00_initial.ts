import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('pipeline_runs')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('workflow_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('pipeline', 'text', (c) => c.notNull())
    .addColumn('model_name', 'text')
    .addColumn('spec', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('code_version', 'text')
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .addColumn('result', 'jsonb')
    .addUniqueConstraint('pipeline_runs_workflow_run_key', ['workflow_id', 'run_id'])
    .execute();

  await db.schema
    .createTable('step_runs')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('pipeline_run_id', 'bigint', (c) => c.notNull().references('pipeline_runs.id').onDelete('cascade'))
    .addColumn('step_name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('pending','running','succeeded','failed','skipped','cached')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cache_key', 'text')
    .addColumn('inputs', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('outputs', 'jsonb')
    .addColumn('error', 'text')
    .addColumn('worker', 'text')
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('step_runs_run_step_key', ['pipeline_run_id', 'step_name'])
    .execute();
  await sql`create index step_runs_cache_key_idx on step_runs (cache_key) where status = 'succeeded'`.execute(db);

  await db.schema
    .createTable('artifacts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('uri', 'text', (c) => c.notNull().unique())
    .addColumn('sha256', 'char(64)', (c) => c.notNull().check(sql`sha256 ~ '^[0-9a-f]{64}$'`))
    .addColumn('bytes', 'bigint', (c) => c.notNull().check(sql`bytes >= 0`))
    .addColumn('media_type', 'text', (c) => c.notNull())
    .addColumn('producing_step_run_id', 'bigint', (c) => c.references('step_runs.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('artifacts_sha256_idx').on('artifacts').column('sha256').execute();

  await db.schema
    .createTable('lineage_edges')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('from_kind', 'text', (c) => c.notNull())
    .addColumn('from_id', 'text', (c) => c.notNull())
    .addColumn('to_kind', 'text', (c) => c.notNull())
    .addColumn('to_id', 'text', (c) => c.notNull())
    .addColumn('relation', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('lineage_edges_natural_key', ['from_kind', 'from_id', 'to_kind', 'to_id', 'relation'])
    .execute();
  await db.schema.createIndex('lineage_edges_to_idx').on('lineage_edges').columns(['to_kind', 'to_id']).execute();

  await db.schema
    .createTable('models')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique().check(sql`name ~ '^[a-z0-9][a-z0-9-]{0,62}$'`))
    .addColumn('description', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('model_versions')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id'))
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version > 0`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('registered','rejected')`))
    .addColumn('idempotency_key', 'text', (c) => c.notNull())
    .addColumn('metrics', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('onnx_artifact_id', 'bigint', (c) => c.references('artifacts.id'))
    .addColumn('input_signature', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('output_signature', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('training_run_id', 'bigint', (c) => c.references('pipeline_runs.id'))
    .addColumn('rejection_reasons', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('model_versions_model_version_key', ['model_id', 'version'])
    .addUniqueConstraint('model_versions_idempotency_key', ['model_id', 'idempotency_key'])
    .execute();

  // The primary key is the "at most one row per model and alias" rule.
  await db.schema
    .createTable('model_aliases')
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id'))
    .addColumn('alias', 'text', (c) => c.notNull().check(sql`alias in ('candidate','staging','production')`))
    .addColumn('model_version_id', 'bigint', (c) => c.notNull().references('model_versions.id'))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('model_aliases_pkey', ['model_id', 'alias'])
    .execute();

  await db.schema
    .createTable('deployments')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('model_version_id', 'bigint', (c) => c.notNull().references('model_versions.id'))
    .addColumn('slot', 'text', (c) => c.notNull())
    .addColumn('endpoint', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('weight', 'real', (c) => c.notNull().defaultTo(0).check(sql`weight >= 0 and weight <= 100`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('deployments_version_slot_key', ['model_version_id', 'slot'])
    .execute();

  await db.schema
    .createTable('monitoring_reports')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id'))
    .addColumn('model_version_id', 'bigint', (c) => c.references('model_versions.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('window_end', 'timestamptz', (c) => c.notNull())
    .addColumn('figures', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('breach', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('monitoring_reports_window_key', ['model_id', 'kind', 'window_start', 'window_end'])
    .execute();

  await db.schema
    .createTable('prediction_log')
    .addColumn('request_id', 'text', (c) => c.primaryKey())
    .addColumn('model_id', 'bigint', (c) => c.notNull().references('models.id'))
    .addColumn('model_version_id', 'bigint', (c) => c.notNull().references('model_versions.id'))
    .addColumn('ts', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('inputs', 'jsonb', (c) => c.notNull())
    .addColumn('outputs', 'jsonb', (c) => c.notNull())
    .addColumn('latency_ms', 'real', (c) => c.notNull())
    .addColumn('label', 'jsonb')
    .addColumn('labeled_at', 'timestamptz')
    .execute();
  // Monitoring reads "this model's predictions in a time window"; BRIN would be smaller but
  // request ids arrive out of time order across server replicas, so a B-tree it is.
  await db.schema.createIndex('prediction_log_model_ts_idx').on('prediction_log').columns(['model_id', 'ts']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'prediction_log',
    'monitoring_reports',
    'deployments',
    'model_aliases',
    'model_versions',
    'models',
    'lineage_edges',
    'artifacts',
    'step_runs',
    'pipeline_runs',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
