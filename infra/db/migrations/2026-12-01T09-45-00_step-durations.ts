import type { Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new dated file instead.

/** How long a step's latest attempt ran (its row is written when the attempt starts and when it ends). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('step_runs').addColumn('duration_ms', 'integer').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('step_runs').dropColumn('duration_ms').execute();
}
