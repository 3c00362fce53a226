import type { Migration } from 'kysely';
import * as initial from './2026-11-22T00-00-00_initial';
import * as dataValidation from './2026-11-22T18-00-00_data-validation';
import * as monitoring from './2026-11-23T06-00-00_monitoring';
import * as stepDurations from './2026-12-01T09-45-00_step-durations';
import * as aliasHistory from './2026-12-01T11-00-00_alias-history';
import * as schemaProposals from './2026-12-01T11-30-00_schema-proposals';
import * as servingState from './2026-12-01T12-00-00_serving-state';
import * as stepPaused from './2026-12-01T17-00-00_step-paused';

/** Every migration, by its frozen ISO-dated name. Order is by name. */
export const migrations: Record<string, Migration> = {
  '2026-11-22T00-00-00_initial': initial,
  '2026-11-22T18-00-00_data-validation': dataValidation,
  '2026-11-23T06-00-00_monitoring': monitoring,
  '2026-12-01T09-45-00_step-durations': stepDurations,
  '2026-12-01T11-00-00_alias-history': aliasHistory,
  '2026-12-01T11-30-00_schema-proposals': schemaProposals,
  '2026-12-01T12-00-00_serving-state': servingState,
  '2026-12-01T17-00-00_step-paused': stepPaused,
};
