import { sql, type Kysely } from 'kysely';
import type { Db } from './connection';
import type { Alias, AliasMoveKind, Database, NewArtifact, StepStatus } from './schema';
import type { TaskKind } from '../../workflows/contracts/training-spec';
import { z } from 'zod';
import { MULTICLASS_LABEL, outputOf } from '../../activities/ml/task-output';

/**
 * Repository functions: plain functions over a Kysely instance or a transaction. Every write an
 * activity makes goes through one of these and is idempotent — keyed by a natural key and
 * written as an upsert, so a retried activity leaves the same rows behind.
 */

const json = (value: unknown) => JSON.stringify(value ?? null);

// ---- pipeline runs and steps ----------------------------------------------------------------

export async function upsertPipelineRun(
  db: Db,
  run: { workflowId: string; runId: string; pipeline: string; modelName?: string | null; spec?: unknown; status: string; codeVersion?: string | null },
) {
  return db
    .insertInto('pipeline_runs')
    .values({
      workflow_id: run.workflowId,
      run_id: run.runId,
      pipeline: run.pipeline,
      model_name: run.modelName ?? null,
      spec: json(run.spec ?? {}),
      status: run.status,
      code_version: run.codeVersion ?? null,
    })
    .onConflict((oc) => oc.columns(['workflow_id', 'run_id']).doUpdateSet({ status: run.status }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function finishPipelineRun(db: Db, id: string, status: string, result: unknown) {
  return db
    .updateTable('pipeline_runs')
    .set({ status, result: json(result), finished_at: sql<Date>`coalesce(finished_at, now())` as never })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getPipelineRun(db: Db, workflowId: string, runId?: string) {
  let q = db.selectFrom('pipeline_runs').selectAll().where('workflow_id', '=', workflowId);
  if (runId) q = q.where('run_id', '=', runId);
  return q.orderBy('started_at', 'desc').executeTakeFirst();
}

export async function upsertStepRun(
  db: Db,
  step: {
    pipelineRunId: string;
    stepName: string;
    status: StepStatus;
    attempts?: number;
    cacheKey?: string | null;
    inputs?: unknown;
    outputs?: unknown;
    error?: string | null;
    worker?: string | null;
    /** When the attempt began (default: now, for a `running` row). */
    startedAt?: Date;
    durationMs?: number;
  },
) {
  const now = new Date();
  const started = step.startedAt ?? (step.status === 'running' ? now : null);
  const finished = ['succeeded', 'failed', 'skipped', 'cached'].includes(step.status) ? now : null;
  return db
    .insertInto('step_runs')
    .values({
      pipeline_run_id: step.pipelineRunId,
      step_name: step.stepName,
      status: step.status,
      attempts: step.attempts ?? 0,
      cache_key: step.cacheKey ?? null,
      inputs: json(step.inputs ?? {}),
      outputs: step.outputs === undefined ? null : json(step.outputs),
      error: step.error ?? null,
      worker: step.worker ?? null,
      started_at: started,
      finished_at: finished,
      duration_ms: step.durationMs ?? null,
    })
    .onConflict((oc) =>
      oc.columns(['pipeline_run_id', 'step_name']).doUpdateSet((eb) => ({
        status: eb.ref('excluded.status'),
        attempts: sql<number>`greatest(step_runs.attempts, excluded.attempts)`,
        cache_key: sql<string>`coalesce(excluded.cache_key, step_runs.cache_key)`,
        inputs: eb.ref('excluded.inputs'),
        outputs: sql<string>`coalesce(excluded.outputs, step_runs.outputs)`,
        error: eb.ref('excluded.error'),
        worker: sql<string>`coalesce(excluded.worker, step_runs.worker)`,
        started_at: sql<Date>`coalesce(step_runs.started_at, excluded.started_at)`,
        finished_at: eb.ref('excluded.finished_at'),
        duration_ms: sql<number>`coalesce(excluded.duration_ms, step_runs.duration_ms)`,
        updated_at: sql<Date>`now()`,
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listStepRuns(db: Db, pipelineRunId: string) {
  return db.selectFrom('step_runs').selectAll().where('pipeline_run_id', '=', pipelineRunId).orderBy('id').execute();
}

/**
 * The step cache: the newest step with this cache key that succeeded (or was itself served from
 * the cache) — in the given workflow's runs when `workflowId` is set.
 */
export async function findCachedStep(db: Db, cacheKey: string, workflowId?: string) {
  let q = db
    .selectFrom('step_runs')
    .innerJoin('pipeline_runs', 'pipeline_runs.id', 'step_runs.pipeline_run_id')
    .selectAll('step_runs')
    .where('step_runs.cache_key', '=', cacheKey)
    .where('step_runs.status', 'in', ['succeeded', 'cached']);
  if (workflowId) q = q.where('pipeline_runs.workflow_id', '=', workflowId);
  return q.orderBy('step_runs.finished_at', 'desc').executeTakeFirst();
}

// ---- artifacts and lineage ------------------------------------------------------------------

export async function recordArtifact(db: Db, artifact: Omit<NewArtifact, 'id' | 'created_at'>) {
  return db
    .insertInto('artifacts')
    .values(artifact)
    .onConflict((oc) =>
      oc.column('uri').doUpdateSet((eb) => ({
        sha256: eb.ref('excluded.sha256'),
        bytes: eb.ref('excluded.bytes'),
        media_type: eb.ref('excluded.media_type'),
        producing_step_run_id: sql<string>`coalesce(artifacts.producing_step_run_id, excluded.producing_step_run_id)`,
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findArtifactsBySha(db: Db, sha256: string) {
  return db.selectFrom('artifacts').selectAll().where('sha256', '=', sha256).orderBy('id').execute();
}

export async function getArtifactByUri(db: Db, uri: string) {
  return db.selectFrom('artifacts').selectAll().where('uri', '=', uri).executeTakeFirst();
}

export interface LineageRef {
  kind: string;
  id: string;
}

export async function addLineageEdge(db: Db, from: LineageRef, to: LineageRef, relation: string) {
  await db
    .insertInto('lineage_edges')
    .values({ from_kind: from.kind, from_id: from.id, to_kind: to.kind, to_id: to.id, relation })
    .onConflict((oc) => oc.columns(['from_kind', 'from_id', 'to_kind', 'to_id', 'relation']).doNothing())
    .execute();
}

export async function lineageInto(db: Db, to: LineageRef) {
  return db
    .selectFrom('lineage_edges')
    .selectAll()
    .where('to_kind', '=', to.kind)
    .where('to_id', '=', to.id)
    .orderBy('id')
    .execute();
}

// ---- models, versions, aliases --------------------------------------------------------------

export async function upsertModel(db: Db, name: string, description?: string) {
  return db
    .insertInto('models')
    .values({ name, description: description ?? null })
    .onConflict((oc) => oc.column('name').doUpdateSet({ description: sql<string>`coalesce(excluded.description, models.description)` }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getModelByName(db: Db, name: string) {
  return db.selectFrom('models').selectAll().where('name', '=', name).executeTakeFirst();
}

/**
 * Registers a version under the next free number. The idempotency key (e.g. the training run
 * and step) makes a retried registration return the version it already made.
 */
export async function registerModelVersion(
  db: Db,
  v: NewModelVersion,
) {
  // The per-model lock below lives as long as the transaction, so there must be one.
  if (db.isTransaction) return registerInTransaction(db, v);
  return (db as Kysely<Database>).transaction().execute((trx) => registerInTransaction(trx, v));
}

interface NewModelVersion {
  modelId: string;
  idempotencyKey: string;
  status: 'registered' | 'rejected';
  metrics: Record<string, unknown>;
  onnxArtifactId?: string | null;
  inputSignature: unknown;
  outputSignature: unknown;
  trainingRunId?: string | null;
  rejectionReasons?: string[] | null;
}

async function registerInTransaction(db: Db, v: NewModelVersion) {
  const existing = await db
    .selectFrom('model_versions')
    .selectAll()
    .where('model_id', '=', v.modelId)
    .where('idempotency_key', '=', v.idempotencyKey)
    .executeTakeFirst();
  if (existing) return existing;
  // Serialise version numbering per model; the unique constraints catch anything else.
  await sql`select pg_advisory_xact_lock(hashtext('model_versions'), ${Number(v.modelId) | 0})`.execute(db);
  const inserted = await db
    .insertInto('model_versions')
    .values((eb) => ({
      model_id: v.modelId,
      version: eb
        .selectFrom('model_versions')
        .select(sql<number>`coalesce(max(version), 0) + 1`.as('next'))
        .where('model_id', '=', v.modelId),
      status: v.status,
      idempotency_key: v.idempotencyKey,
      metrics: json(v.metrics),
      onnx_artifact_id: v.onnxArtifactId ?? null,
      input_signature: json(v.inputSignature),
      output_signature: json(v.outputSignature),
      training_run_id: v.trainingRunId ?? null,
      rejection_reasons: v.rejectionReasons ? json(v.rejectionReasons) : null,
    }))
    .onConflict((oc) => oc.columns(['model_id', 'idempotency_key']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return inserted;
  return db
    .selectFrom('model_versions')
    .selectAll()
    .where('model_id', '=', v.modelId)
    .where('idempotency_key', '=', v.idempotencyKey)
    .executeTakeFirstOrThrow();
}

export async function getModelVersion(db: Db, modelId: string, version: number) {
  return db.selectFrom('model_versions').selectAll().where('model_id', '=', modelId).where('version', '=', version).executeTakeFirst();
}

export async function listModelVersions(db: Db, modelId: string) {
  return db.selectFrom('model_versions').selectAll().where('model_id', '=', modelId).orderBy('version').execute();
}

/** Who moved an alias and why, for its history. */
export interface AliasMove {
  kind?: AliasMoveKind;
  /** The workflow (or person) that moved it. */
  movedBy?: string | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

/**
 * Points an alias at a version (at most one row per model and alias, by primary key) and
 * appends the move to `alias_history` in the same transaction. Pointing it where it already is
 * writes nothing, so a retried activity leaves one history row.
 */
export async function setAlias(db: Db, modelId: string, alias: Alias, modelVersionId: string, move: AliasMove = {}): Promise<{ model_id: string; alias: Alias; model_version_id: string; moved: boolean }> {
  if (!db.isTransaction) return db.transaction().execute((trx) => setAlias(trx, modelId, alias, modelVersionId, move));
  // The row lock serialises concurrent moves of one alias; the first move has no row to lock,
  // and the unique index on open tenures makes a concurrent first move fail instead of forking.
  const current = await db.selectFrom('model_aliases').select('model_version_id').where('model_id', '=', modelId).where('alias', '=', alias).forUpdate().executeTakeFirst();
  if (current?.model_version_id === modelVersionId) return { model_id: modelId, alias, model_version_id: modelVersionId, moved: false };
  const kind = move.kind ?? 'set';
  await db
    .updateTable('alias_history')
    .set({ valid_until: sql<Date>`now()` as never, ended_by: kind })
    .where('model_id', '=', modelId)
    .where('alias', '=', alias)
    .where('valid_until', 'is', null)
    .execute();
  await db
    .insertInto('alias_history')
    .values({
      model_id: modelId,
      alias,
      model_version_id: modelVersionId,
      previous_version_id: current?.model_version_id ?? null,
      kind,
      moved_by: move.movedBy ?? null,
      reason: move.reason ?? null,
      details: json(move.details ?? {}),
    })
    .execute();
  await db
    .insertInto('model_aliases')
    .values({ model_id: modelId, alias, model_version_id: modelVersionId })
    .onConflict((oc) => oc.columns(['model_id', 'alias']).doUpdateSet((eb) => ({ model_version_id: eb.ref('excluded.model_version_id'), updated_at: sql<Date>`now()` })))
    .execute();
  return { model_id: modelId, alias, model_version_id: modelVersionId, moved: true };
}

const tenures = (db: Db, modelId: string) =>
  db
    .selectFrom('alias_history as h')
    .innerJoin('model_versions as v', 'v.id', 'h.model_version_id')
    .leftJoin('model_versions as p', 'p.id', 'h.previous_version_id')
    .select(['h.id', 'h.alias', 'h.model_version_id', 'v.version', 'p.version as from_version', 'h.valid_from', 'h.valid_until', 'h.kind', 'h.ended_by', 'h.moved_by', 'h.reason', 'h.details'])
    .where('h.model_id', '=', modelId);

/** An alias's tenures, oldest first, with version numbers. */
export async function aliasHistory(db: Db, modelId: string, alias?: Alias) {
  let q = tenures(db, modelId).orderBy('h.id');
  if (alias) q = q.where('h.alias', '=', alias);
  return q.execute();
}

/** The tenures open at time `at` (begun at or before it, ended after it), one per alias at most. */
export async function aliasesAt(db: Db, modelId: string, at: Date, alias?: Alias) {
  let q = tenures(db, modelId)
    .where('h.valid_from', '<=', at)
    .where((eb) => eb.or([eb('h.valid_until', 'is', null), eb('h.valid_until', '>', at)]))
    .orderBy('h.alias')
    .orderBy('h.id');
  if (alias) q = q.where('h.alias', '=', alias);
  return q.execute();
}

/**
 * What a rollback returns to: the most recent version that held the alias before the current
 * one, is still registered, and whose tenure did not end in a rollback (a version that was rolled
 * back failed in production, or its promotion failed a gate after it moved).
 */
export async function rollbackTarget(db: Db, modelId: string, alias: Alias) {
  const current = await db.selectFrom('model_aliases').select('model_version_id').where('model_id', '=', modelId).where('alias', '=', alias).executeTakeFirst();
  if (!current) return undefined;
  return db
    .selectFrom('alias_history as h')
    .innerJoin('model_versions as v', 'v.id', 'h.model_version_id')
    .select(['v.version', 'h.model_version_id'])
    .where('h.model_id', '=', modelId)
    .where('h.alias', '=', alias)
    .where('h.model_version_id', '!=', current.model_version_id)
    .where('v.status', '=', 'registered')
    .where((eb) => eb.not(eb.exists(
      eb.selectFrom('alias_history as r').select('r.id').whereRef('r.model_id', '=', 'h.model_id').whereRef('r.alias', '=', 'h.alias').whereRef('r.model_version_id', '=', 'h.model_version_id').where('r.ended_by', 'in', ['rollback', 'revert']),
    )))
    .orderBy('h.id', 'desc')
    .executeTakeFirst();
}

export async function getAlias(db: Db, modelId: string, alias: Alias) {
  return db
    .selectFrom('model_aliases')
    .innerJoin('model_versions', 'model_versions.id', 'model_aliases.model_version_id')
    .select(['model_aliases.alias', 'model_aliases.updated_at', 'model_versions.id as model_version_id', 'model_versions.version', 'model_versions.onnx_artifact_id'])
    .where('model_aliases.model_id', '=', modelId)
    .where('model_aliases.alias', '=', alias)
    .executeTakeFirst();
}

export async function removeAlias(db: Db, modelId: string, alias: Alias, move: AliasMove = {}): Promise<void> {
  if (!db.isTransaction) return db.transaction().execute((trx) => removeAlias(trx, modelId, alias, move));
  await db.updateTable('alias_history').set({ valid_until: sql<Date>`now()` as never, ended_by: move.kind ?? 'set' }).where('model_id', '=', modelId).where('alias', '=', alias).where('valid_until', 'is', null).execute();
  await db.deleteFrom('model_aliases').where('model_id', '=', modelId).where('alias', '=', alias).execute();
}

// ---- deployments, monitoring, predictions ---------------------------------------------------

export async function upsertDeployment(
  db: Db,
  d: { modelVersionId: string; slot: string; endpoint?: string | null; status: string; weight: number },
) {
  return db
    .insertInto('deployments')
    .values({ model_version_id: d.modelVersionId, slot: d.slot, endpoint: d.endpoint ?? null, status: d.status, weight: d.weight })
    .onConflict((oc) =>
      oc.columns(['model_version_id', 'slot']).doUpdateSet((eb) => ({
        endpoint: eb.ref('excluded.endpoint'),
        status: eb.ref('excluded.status'),
        weight: eb.ref('excluded.weight'),
        updated_at: sql<Date>`now()`,
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function insertMonitoringReport(
  db: Db,
  r: { modelId: string; modelVersionId?: string | null; kind: string; windowStart: Date; windowEnd: Date; figures: Record<string, unknown>; breach: boolean },
) {
  return db
    .insertInto('monitoring_reports')
    .values({
      model_id: r.modelId,
      model_version_id: r.modelVersionId ?? null,
      kind: r.kind,
      window_start: r.windowStart,
      window_end: r.windowEnd,
      figures: json(r.figures),
      breach: r.breach,
    })
    .onConflict((oc) =>
      oc.columns(['model_id', 'kind', 'window_start', 'window_end']).doUpdateSet((eb) => ({
        figures: eb.ref('excluded.figures'),
        breach: eb.ref('excluded.breach'),
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The rows a raw statement wrote, as the driver reports them; a statement that reports none is an error, never "0 rows". */
function affectedRows(result: { numAffectedRows?: bigint }, what: string): number {
  if (result.numAffectedRows === undefined) throw new Error(`${what}: the database driver reported no row count`);
  return Number(result.numAffectedRows);
}

export async function insertPredictions(
  db: Db,
  rows: Array<{ requestId: string; modelId: string; modelVersionId: string; ts?: Date; inputs: unknown; outputs: unknown; latencyMs: number }>,
): Promise<number> {
  if (rows.length === 0) return 0;
  // One array parameter per column (unnest) rather than a value list of 7 parameters a row: the
  // model server writes thousands of rows a second, and building and binding the value list
  // cost it more than scoring them.
  const now = new Date();
  const result = await sql`insert into prediction_log (request_id, model_id, model_version_id, ts, inputs, outputs, latency_ms)
    select * from unnest(
      ${rows.map((r) => r.requestId)}::text[], ${rows.map((r) => r.modelId)}::bigint[], ${rows.map((r) => r.modelVersionId)}::bigint[],
      ${rows.map((r) => (r.ts ?? now).toISOString())}::timestamptz[], ${rows.map((r) => json(r.inputs))}::jsonb[], ${rows.map((r) => json(r.outputs))}::jsonb[],
      ${rows.map((r) => r.latencyMs)}::real[])
    on conflict (request_id) do nothing`.execute(db);
  return affectedRows(result, 'prediction_log insert');
}

export async function attachLabel(db: Db, modelId: string, requestId: string, label: unknown) {
  return (await attachLabels(db, modelId, [{ requestId, label }])) > 0;
}

/** The request id of a shadow's row for the same request (`X` → `X:shadow`, `X#i` → `X:shadow#i`). */
export function shadowRequestId(requestId: string): string {
  const hash = requestId.lastIndexOf('#');
  return hash < 0 ? `${requestId}:shadow` : `${requestId.slice(0, hash)}:shadow${requestId.slice(hash)}`;
}

/**
 * Attaches ground truth to logged predictions, and to the shadow's row for the same request (so a
 * shadow candidate is judged on labels too), in one statement each: feedback arrives in batches of
 * thousands. Returns the application rows labelled.
 */
export async function attachLabels(db: Db, modelId: string, labels: Array<{ requestId: string; label: unknown }>): Promise<number> {
  if (!labels.length) return 0;
  // Only the model's own rows: a request id of another model is unknown here, not labelled with this model's ground truth.
  const update = (ids: string[]) => sql`update prediction_log p set label = v.label, labeled_at = now()
    from (select unnest(${ids}::text[]) as request_id, unnest(${labels.map((l) => JSON.stringify(l.label))}::jsonb[]) as label) v
    where p.request_id = v.request_id and p.model_id = ${modelId}`.execute(db);
  const res = await update(labels.map((l) => l.requestId));
  await update(labels.map((l) => shadowRequestId(l.requestId)));
  return affectedRows(res, 'prediction_log label update');
}

/** The output signatures of a model's registered versions, one per distinct signature (what says each version's task). */
export async function versionOutputSignatures(db: Db, modelId: string): Promise<unknown[]> {
  const rows = await db.selectFrom('model_versions').select('output_signature').distinct().where('model_id', '=', modelId).execute();
  return rows.map((r) => r.output_signature);
}

// ---- data schemas and spans -----------------------------------------------------------------

/** The model's current data schema: the newest accepted version (proposals do not count). */
export async function latestDataSchema(db: Db, modelId: string) {
  return db.selectFrom('data_schemas').selectAll().where('model_id', '=', modelId).where('status', '=', 'accepted').orderBy('version', 'desc').executeTakeFirst();
}

export async function listDataSchemas(db: Db, modelId: string) {
  return db.selectFrom('data_schemas').select(['version', 'status', 'fingerprint', 'changes', 'source_snapshot_sha256', 'created_at', 'accepted_at', 'accepted_by']).where('model_id', '=', modelId).orderBy('version').execute();
}

/**
 * Accepts a proposed schema (the newest, or `version`) as the model's current one. Only a
 * proposal newer than the current schema can be accepted; accepting one twice changes nothing.
 */
export async function acceptDataSchema(db: Db, modelId: string, by: string, version?: number) {
  const run = async (trx: Db) => {
    await sql`select pg_advisory_xact_lock(hashtext('data_schemas'), ${Number(modelId) | 0})`.execute(trx);
    const current = await latestDataSchema(trx, modelId);
    let q = trx.selectFrom('data_schemas').selectAll().where('model_id', '=', modelId).where('status', '=', 'proposed').orderBy('version', 'desc');
    if (version !== undefined) q = q.where('version', '=', version);
    const proposal = await q.executeTakeFirst();
    if (!proposal) {
      if (version !== undefined && current?.version === version) return { row: current, accepted: false };
      return undefined;
    }
    if (current && proposal.version < current.version) throw new Error(`schema version ${proposal.version} is older than the current version ${current.version}; propose it again by running on that data`);
    const row = await trx.updateTable('data_schemas').set({ status: 'accepted', accepted_at: sql<Date>`now()` as never, accepted_by: by }).where('id', '=', proposal.id).returningAll().executeTakeFirstOrThrow();
    return { row, accepted: true };
  };
  if (db.isTransaction) return run(db);
  return (db as Kysely<Database>).transaction().execute(run);
}

/**
 * Stores a schema as the model's next version. The same schema (fingerprint) as the newest
 * version is that row (a retried step, or a proposal made twice); a schema that comes back after
 * another one is a new version.
 */
export async function saveDataSchema(db: Db, s: { modelId: string; fingerprint: string; schema: unknown; sourceSnapshotSha256: string; status?: 'accepted' | 'proposed'; changes?: unknown }) {
  const run = async (trx: Db) => {
    await sql`select pg_advisory_xact_lock(hashtext('data_schemas'), ${Number(s.modelId) | 0})`.execute(trx);
    const newest = await trx.selectFrom('data_schemas').selectAll().where('model_id', '=', s.modelId).orderBy('version', 'desc').executeTakeFirst();
    if (newest?.fingerprint === s.fingerprint) return newest;
    const inserted = await trx
      .insertInto('data_schemas')
      .values((eb) => ({
        model_id: s.modelId,
        version: eb.selectFrom('data_schemas').select(sql<number>`coalesce(max(version), 0) + 1`.as('next')).where('model_id', '=', s.modelId),
        fingerprint: s.fingerprint,
        schema: json(s.schema),
        source_snapshot_sha256: s.sourceSnapshotSha256,
        status: s.status ?? 'accepted',
        changes: s.changes === undefined ? null : json(s.changes),
        accepted_at: (s.status ?? 'accepted') === 'accepted' ? sql<Date>`now()` : null,
      }))
      .returningAll()
      .executeTakeFirstOrThrow();
    return inserted;
  };
  if (db.isTransaction) return run(db);
  return (db as Kysely<Database>).transaction().execute(run);
}

export async function upsertDataSpan(db: Db, s: { modelId: string; snapshotSha256: string; schemaVersion: number; rows: number; statistics: unknown; report: unknown }) {
  return db
    .insertInto('data_spans')
    .values({ model_id: s.modelId, snapshot_sha256: s.snapshotSha256, schema_version: s.schemaVersion, rows: s.rows, statistics: json(s.statistics), report: json(s.report) })
    .onConflict((oc) =>
      oc.columns(['model_id', 'snapshot_sha256']).doUpdateSet((eb) => ({
        schema_version: eb.ref('excluded.schema_version'),
        statistics: eb.ref('excluded.statistics'),
        report: eb.ref('excluded.report'),
      })),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The most recent span of this model other than `snapshotSha256`: what new data is compared with. */
export async function previousDataSpan(db: Db, modelId: string, snapshotSha256: string) {
  return db
    .selectFrom('data_spans')
    .selectAll()
    .where('model_id', '=', modelId)
    .where('snapshot_sha256', '!=', snapshotSha256)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .executeTakeFirst();
}

// ---- monitoring checks ----------------------------------------------------------------------

/** What one monitoring window holds, column-wise: numeric inputs as float arrays (NaN = missing or not a number). */
export interface PredictionWindow {
  rows: number;
  numeric: Record<string, Float64Array>;
  /** Category → rows, per categorical input; null or '' is counted in `missing`. */
  categorical: Record<string, { counts: Record<string, number>; missing: number }>;
  /** Served scores (the task's output) of `modelVersionId` (NaN for other versions' rows). */
  scores: Float64Array;
  /** Input key → rows that carried it. */
  keyRows: Record<string, number>;
}

/**
 * The model's traffic in (start, end]: rows served by routing (stable or canary). Shadow scores
 * were never returned to anyone, and pinned ones (`/versions/{v}/infer`) are the promotion's
 * contract and load tests or explicit callers, not the application's traffic.
 */
const SERVED_ROLES = sql`(outputs->>'role') in ('stable', 'canary')`;
function windowRows(modelId: string, start: Date, end: Date) {
  return sql`select model_version_id, inputs, outputs from prediction_log
    where model_id = ${modelId} and ts > ${start} and ts <= ${end} and ${SERVED_ROLES}`;
}

const floats = (v: unknown): Float64Array => Float64Array.from((v as Array<number | null> | null) ?? [], (x) => (x === null ? NaN : x));

/**
 * One window of the prediction log for monitoring, aggregated in PostgreSQL: numeric inputs and
 * probabilities come back as one float8[] per column (no per-row objects), categorical inputs and
 * input keys as GROUP BY counts. Feature names are bound as parameters, never spliced into SQL.
 */
export async function readPredictionWindow(
  db: Db,
  w: { modelId: string; modelVersionId: string | null; start: Date; end: Date; numeric: string[]; categorical: string[]; task?: TaskKind },
): Promise<PredictionWindow> {
  const output = outputOf(w.task);
  const rowsOf = windowRows(w.modelId, w.start, w.end);
  const numericCols = w.numeric.map(
    (name, i) => sql`array_agg(case when jsonb_typeof(inputs -> ${name}::text) = 'number' then (inputs ->> ${name}::text)::float8 else 'NaN'::float8 end) as ${sql.ref(`n${i}`)}`,
  );
  const prob = sql`array_agg(case when model_version_id = ${w.modelVersionId} and jsonb_typeof(outputs -> ${output}::text) = 'number' then (outputs ->> ${output}::text)::float8 else 'NaN'::float8 end) as p`;
  const agg = await sql<Record<string, unknown>>`select count(*)::int as rows, ${sql.join([...numericCols, prob])} from (${rowsOf}) w`.execute(db);
  // An aggregate without GROUP BY gives exactly one row: without it, or with columns short of the count, the window is unknown, not empty.
  const first = agg.rows[0];
  if (!first || typeof first.rows !== 'number') throw new Error(`prediction window: the aggregate gave no row count (${JSON.stringify(first)})`);
  const column = (v: unknown, name: string) => {
    const values = floats(v);
    if (values.length !== first.rows) throw new Error(`prediction window: column ${name} has ${values.length} values for ${first.rows} rows`);
    return values;
  };
  const out: PredictionWindow = { rows: first.rows, numeric: {}, categorical: {}, scores: column(first.p, output), keyRows: {} };
  w.numeric.forEach((name, i) => (out.numeric[name] = column(first[`n${i}`], name)));
  for (const name of w.categorical) out.categorical[name] = { counts: {}, missing: 0 };
  if (out.rows === 0) return out;

  if (w.categorical.length) {
    const pairs = w.categorical.map((name) => sql`(${name}::text, w.inputs ->> ${name}::text)`);
    const cats = await sql<{ k: string; val: string | null; n: number }>`select v.k, v.val, count(*)::int as n from (${rowsOf}) w cross join lateral (values ${sql.join(pairs)}) as v(k, val) group by v.k, v.val`.execute(db);
    const counts = new Map(w.categorical.map((name) => [name, { counts: new Map<string, number>(), missing: 0 }]));
    for (const r of cats.rows) {
      const c = counts.get(r.k)!;
      if (r.val === null || r.val === '') c.missing += r.n;
      else c.counts.set(r.val, r.n);
    }
    // Through Maps: a served category called "__proto__" must stay a key.
    for (const [name, c] of counts) out.categorical[name] = { counts: Object.fromEntries(c.counts), missing: c.missing };
  }
  const keys = await sql<{ k: string; n: number }>`select k, count(*)::int as n from (${rowsOf}) w
    cross join lateral jsonb_object_keys(case when jsonb_typeof(w.inputs) = 'object' then w.inputs else '{}'::jsonb end) as k group by k`.execute(db);
  out.keyRows = Object.fromEntries(keys.rows.map((r) => [r.k, r.n]));
  return out;
}

/**
 * A logged label as the number a task judges, in SQL: a binary label as 0/1 (JSON 0/1 or
 * false/true), a regression's as its JSON number; null for anything else.
 */
export function labelValue(task: TaskKind | undefined) {
  return task === 'regression'
    ? sql<number | null>`case when jsonb_typeof(label) = 'number' then (label #>> '{}')::float8 end`
    : sql<number | null>`case when label in ('1'::jsonb, 'true'::jsonb) then 1 when label in ('0'::jsonb, 'false'::jsonb) then 0 end`;
}

/**
 * Predictions of one version whose label arrived in (since, end]: its task's output against
 * the label as `labelValue` reads it; rows whose label it cannot read are skipped. Pairs stay aligned by ordering both arrays alike.
 */
export async function readLabeledPredictions(
  db: Db,
  w: { modelId: string; modelVersionId: string; since: Date; end: Date; task?: TaskKind },
): Promise<{ scores: Float64Array; labels: Float64Array }> {
  const output = outputOf(w.task);
  const y = labelValue(w.task);
  const r = await sql<{ p: number[] | null; y: number[] | null }>`select array_agg(p order by request_id) as p, array_agg(y order by request_id) as y from (
      select request_id, (outputs ->> ${output}::text)::float8 as p, ${y} as y
      from prediction_log
      where model_id = ${w.modelId} and model_version_id = ${w.modelVersionId} and labeled_at > ${w.since} and labeled_at <= ${w.end}
        and ${SERVED_ROLES} and jsonb_typeof(outputs -> ${output}::text) = 'number'
    ) t where y is not null`.execute(db);
  const row = r.rows[0];
  if (!row) throw new Error('labelled predictions: the aggregate gave no row');
  // array_agg over no rows is null: no labels. Arrays of different lengths would pair the wrong rows.
  const scores = Float64Array.from(row.p ?? []);
  const labels = Float64Array.from(row.y ?? []);
  if (scores.length !== labels.length) throw new Error(`labelled predictions: ${scores.length} scores for ${labels.length} labels`);
  return { scores, labels };
}

/**
 * A multiclass version's served classes in (start, end]: its logged `label` (the class as the
 * data spells it, a JSON string or integer; null when a row lacks it) → rows, grouped in
 * PostgreSQL. Other versions' rows are not its traffic.
 */
export async function readServedClasses(db: Db, w: { modelId: string; modelVersionId: string; start: Date; end: Date }): Promise<Array<{ label: unknown; n: number }>> {
  const r = await sql<{ label: unknown; n: number }>`select w.outputs -> ${MULTICLASS_LABEL}::text as label, count(*)::int as n from (${windowRows(w.modelId, w.start, w.end)}) w
    where w.model_version_id = ${w.modelVersionId} group by 1`.execute(db);
  return r.rows;
}

/** One row per labelled prediction: whatever was logged, for the caller to read against the classes. */
const labeledPairs = z.array(z.tuple([z.unknown(), z.unknown()])).nullable();

/**
 * Predictions of a multiclass version whose label arrived in (since, end]: the logged
 * probabilities and the label as sent, both raw JSON (the feedback endpoint took only the
 * version's classes, but older rows or other writers may hold anything). One jsonb array of
 * pairs, so a row's probabilities and label cannot come apart.
 */
export async function readLabeledClasses(
  db: Db,
  w: { modelId: string; modelVersionId: string; since: Date; end: Date },
): Promise<Array<{ probabilities: unknown; label: unknown }>> {
  const output = outputOf('multiclass');
  const r = await sql<{ pairs: unknown }>`select jsonb_agg(jsonb_build_array(outputs -> ${output}::text, label) order by request_id) as pairs
      from prediction_log
     where model_id = ${w.modelId} and model_version_id = ${w.modelVersionId} and labeled_at > ${w.since} and labeled_at <= ${w.end}
       and ${SERVED_ROLES} and jsonb_typeof(outputs -> ${output}::text) = 'array' and label is not null`.execute(db);
  const row = r.rows[0];
  if (!row) throw new Error('labelled multiclass predictions: the aggregate gave no row');
  const pairs = labeledPairs.safeParse(row.pairs);
  if (!pairs.success) throw new Error(`labelled multiclass predictions: not a list of [probabilities, label] pairs (${pairs.error.issues[0]?.message})`);
  // jsonb_agg over no rows is null: no labels.
  return (pairs.data ?? []).map(([probabilities, label]) => ({ probabilities, label }));
}

/** The outputs of a training run's `prepare` step (where its baseline and splits are), for versions registered without them in their lineage. */
export async function prepareStepOutputs(db: Db, pipelineRunId: string) {
  const row = await db
    .selectFrom('step_runs')
    .select('outputs')
    .where('pipeline_run_id', '=', pipelineRunId)
    .where('step_name', '=', 'prepare')
    .where('status', 'in', ['succeeded', 'cached'])
    .executeTakeFirst();
  return (row?.outputs ?? undefined) as unknown;
}

/**
 * One monitoring check's report, keyed by (model, kind, window): a retried check overwrites its
 * own row. The row id is the report id, so it is written into the figures in the same transaction.
 */
export async function upsertMonitoringCheck(
  db: Db,
  r: { modelId: string; modelVersionId: string | null; kind: string; windowStart: Date; windowEnd: Date; figures: Record<string, unknown>; breach: boolean },
): Promise<string> {
  const run = async (trx: Db) => {
    const row = await insertMonitoringReport(trx, r);
    await trx
      .updateTable('monitoring_reports')
      .set({ figures: sql<string>`figures || jsonb_build_object('reportId', id::text)`, model_version_id: r.modelVersionId })
      .where('id', '=', row.id)
      .execute();
    return row.id;
  };
  if (db.isTransaction) return run(db);
  return (db as Kysely<Database>).transaction().execute(run);
}

// ---- serving state (traffic, versions to hold, model servers, errors) ------------------------

export interface ServingTrafficIds {
  stableVersionId: string | null;
  canaryVersionId: string | null;
  canaryWeight: number;
  shadowVersionId: string | null;
}

/** A model's serving state as the model servers apply it: version numbers, and the generation. */
export interface ServingModelState {
  modelId: string;
  name: string;
  generation: number;
  stable?: number;
  canary?: number;
  canaryWeight: number;
  shadow?: number;
  /** Every version the model's servers must hold loaded (the traffic's among them), ascending. */
  versions: number[];
}

/**
 * Changes a model's serving state and draws a new generation for it: `traffic` (when given)
 * replaces the split, `add` joins the set of versions servers must hold (the traffic's versions
 * are added too), `remove` leaves it. Returns the new generation. Run it in the transaction
 * that writes the rest of the change (the deployments mirror), so servers see all or nothing.
 */
export async function changeServingState(
  db: Db,
  c: { modelId: string; by: string; traffic?: ServingTrafficIds; add?: string[]; remove?: string[] },
): Promise<number> {
  const t = c.traffic;
  const add = [...new Set([...(c.add ?? []), ...(t ? [t.stableVersionId, t.canaryVersionId, t.shadowVersionId].filter((v): v is string => v !== null) : [])])];
  if (add.length) {
    await db
      .insertInto('serving_versions')
      .values(add.map((id) => ({ model_id: c.modelId, model_version_id: id, added_by: c.by })))
      .onConflict((oc) => oc.columns(['model_id', 'model_version_id']).doNothing())
      .execute();
  }
  const remove = (c.remove ?? []).filter((id) => !add.includes(id));
  if (remove.length) await db.deleteFrom('serving_versions').where('model_id', '=', c.modelId).where('model_version_id', 'in', remove).execute();
  const next = sql<string>`nextval('serving_generation_seq')`;
  const row = await db
    .insertInto('serving_traffic')
    .values({
      model_id: c.modelId,
      stable_version_id: t?.stableVersionId ?? null,
      canary_version_id: t?.canaryVersionId ?? null,
      canary_weight: t?.canaryWeight ?? 0,
      shadow_version_id: t?.shadowVersionId ?? null,
      generation: next as never,
      updated_by: c.by,
    })
    .onConflict((oc) =>
      oc.column('model_id').doUpdateSet((eb) => ({
        ...(t
          ? { stable_version_id: eb.ref('excluded.stable_version_id'), canary_version_id: eb.ref('excluded.canary_version_id'), canary_weight: eb.ref('excluded.canary_weight'), shadow_version_id: eb.ref('excluded.shadow_version_id') }
          : {}),
        generation: eb.ref('excluded.generation'),
        updated_by: eb.ref('excluded.updated_by'),
        updated_at: sql<Date>`now()`,
      })),
    )
    .returning('generation')
    .executeTakeFirstOrThrow();
  return Number(row.generation);
}

export async function getServingTraffic(db: Db, modelId: string) {
  return db.selectFrom('serving_traffic').selectAll().where('model_id', '=', modelId).executeTakeFirst();
}

export async function listServingVersionIds(db: Db, modelId: string): Promise<string[]> {
  return (await db.selectFrom('serving_versions').select('model_version_id').where('model_id', '=', modelId).execute()).map((r) => r.model_version_id);
}

/** Every model's generation: what a server polls, cheaply, to learn that something changed. */
export async function servingGenerations(db: Db): Promise<Map<string, number>> {
  const rows = await db.selectFrom('serving_traffic').select(['model_id', 'generation']).execute();
  return new Map(rows.map((r) => [r.model_id, Number(r.generation)]));
}

/** The serving state of every model (or of `modelIds`); read it in one repeatable-read transaction for one snapshot. */
export async function readServingState(db: Db, modelIds?: string[]): Promise<ServingModelState[]> {
  if (modelIds && modelIds.length === 0) return [];
  let q = db
    .selectFrom('serving_traffic as t')
    .innerJoin('models as m', 'm.id', 't.model_id')
    .leftJoin('model_versions as s', 's.id', 't.stable_version_id')
    .leftJoin('model_versions as c', 'c.id', 't.canary_version_id')
    .leftJoin('model_versions as h', 'h.id', 't.shadow_version_id')
    .select(['t.model_id', 'm.name', 't.generation', 't.canary_weight', 's.version as stable', 'c.version as canary', 'h.version as shadow']);
  if (modelIds) q = q.where('t.model_id', 'in', modelIds);
  const traffic = await q.execute();
  let vq = db.selectFrom('serving_versions as sv').innerJoin('model_versions as mv', 'mv.id', 'sv.model_version_id').select(['sv.model_id', 'mv.version']);
  if (modelIds) vq = vq.where('sv.model_id', 'in', modelIds);
  const versions = await vq.execute();
  return traffic.map((t) => {
    const set = new Set(versions.filter((v) => v.model_id === t.model_id).map((v) => v.version));
    for (const v of [t.stable, t.canary, t.shadow]) if (v !== null) set.add(v);
    return {
      modelId: t.model_id,
      name: t.name,
      generation: Number(t.generation),
      ...(t.stable !== null ? { stable: t.stable } : {}),
      ...(t.canary !== null ? { canary: t.canary } : {}),
      canaryWeight: t.canary !== null ? t.canary_weight : 0,
      ...(t.shadow !== null ? { shadow: t.shadow } : {}),
      versions: [...set].sort((a, b) => a - b),
    };
  });
}

/** A model server's registration and heartbeat: what it has applied, whether it is ready, what it lacks. */
export async function upsertModelServer(
  db: Db,
  s: { id: string; endpoint: string; pid: number; heartbeatMs: number; ready: boolean; applied: Record<string, number>; missing: string[]; loadErrors: Array<{ model: string; version: number; message: string; permanent: boolean }> },
) {
  const values = { ready: s.ready, applied: json(s.applied), missing: json(s.missing), load_errors: json(s.loadErrors) };
  await db
    .insertInto('model_servers')
    .values({ id: s.id, endpoint: s.endpoint, pid: s.pid, heartbeat_ms: s.heartbeatMs, ...values })
    .onConflict((oc) => oc.column('id').doUpdateSet({ ...values, endpoint: s.endpoint, heartbeat_ms: s.heartbeatMs, seen_at: sql<Date>`now()` as never }))
    .execute();
}

/** A server that stopped gracefully: no longer waited for. */
export async function stopModelServer(db: Db, id: string) {
  await db.updateTable('model_servers').set({ stopped_at: sql<Date>`now()` as never, ready: false }).where('id', '=', id).execute();
}

/** Forgets servers not seen for `olderThanMs` (their rows are only history). */
export async function pruneModelServers(db: Db, olderThanMs: number) {
  await db.deleteFrom('model_servers').where('seen_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`).execute();
}

/** Servers that heartbeat within three of their own intervals (by the database's clock) and have not stopped. */
export async function liveModelServers(db: Db) {
  return db
    .selectFrom('model_servers')
    .selectAll()
    .where('stopped_at', 'is', null)
    .where(sql<boolean>`seen_at > now() - make_interval(secs => heartbeat_ms * 3 / 1000.0)`)
    .orderBy('started_at')
    .execute();
}

/** Adds failed-request counts to their (server, version, role, second) buckets. */
export async function addServingErrors(db: Db, rows: Array<{ serverId: string; modelVersionId: string; role: string; bucket: Date; count: number }>) {
  if (rows.length === 0) return;
  await db
    .insertInto('serving_errors')
    .values(rows.map((r) => ({ server_id: r.serverId, model_version_id: r.modelVersionId, role: r.role, bucket: r.bucket, count: r.count })))
    .onConflict((oc) => oc.columns(['server_id', 'model_version_id', 'role', 'bucket']).doUpdateSet({ count: sql<number>`serving_errors.count + excluded.count` }))
    .execute();
}

/**
 * Failed requests of a version in a role within [since, until], across every server. A bucket
 * is one second; one that overlaps `since` counts whole, so the figure never undercounts.
 */
export async function countServingErrors(db: Db, w: { modelVersionId: string; role: string; since: Date; until: Date }): Promise<number> {
  const row = await db
    .selectFrom('serving_errors')
    .select(sql<string>`coalesce(sum(count), 0)`.as('n'))
    .where('model_version_id', '=', w.modelVersionId)
    .where('role', '=', w.role)
    .where('bucket', '>', sql<Date>`${w.since}::timestamptz - interval '1 second'`)
    .where('bucket', '<=', w.until)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
