import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

/**
 * Monitoring reads "this model's predictions whose label arrived in a time range" every period;
 * most rows never get a label, so the index covers only those that did. (The one-report-per-window
 * key the checks upsert on, monitoring_reports_window_key, exists since the initial migration.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists prediction_log_model_labeled_idx on prediction_log (model_id, labeled_at) where labeled_at is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists prediction_log_model_labeled_idx`.execute(db);
}
