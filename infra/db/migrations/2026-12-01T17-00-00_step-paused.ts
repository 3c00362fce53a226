import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

/**
 * A step an operator paused (`temporal activity pause`) is neither failed nor running: it waits,
 * with its checkpoint, for `temporal activity unpause`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table step_runs drop constraint step_runs_status_check`.execute(db);
  await sql`alter table step_runs add constraint step_runs_status_check check (status in ('pending','running','succeeded','failed','skipped','cached','paused'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`update step_runs set status = 'failed' where status = 'paused'`.execute(db);
  await sql`alter table step_runs drop constraint step_runs_status_check`.execute(db);
  await sql`alter table step_runs add constraint step_runs_status_check check (status in ('pending','running','succeeded','failed','skipped','cached'))`.execute(db);
}
