import { sql, type Kysely } from 'kysely';
import type { Alias, Database } from '../../infra/db/schema';
import { UserFacingError } from '../../infra/errors';
import { listAliasHistory, listModels, type AliasMoveView, type ModelView } from '../registry';

/**
 * What the registry pages show, read from the metadata store (read-only: no query here writes).
 * Each view's data is one plain object, so the server and the static export render the same.
 */

export class NotFound extends UserFacingError {}

export interface RunSummary {
  id: string;
  workflowId: string;
  runId: string;
  pipeline: string;
  model: string | null;
  status: string;
  codeVersion: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  /** Steps by state, e.g. { succeeded: 7, cached: 2 }. */
  steps: Record<string, number>;
}

export interface StepView {
  name: string;
  status: string;
  attempts: number;
  worker: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  error: string | null;
  cacheKey: string | null;
}

export interface MonitoringPoint {
  windowEnd: Date;
  version: number | null;
  level: string;
  breach: boolean;
  rows: number | null;
  labeledRows: number | null;
  predictionPsi: number | null;
  maxFeaturePsi: number | null;
  maxFeature: string | null;
  onlineAuc: number | null;
}

export interface ModelSummary {
  model: ModelView;
  latestCheck: MonitoringPoint | null;
  lastRun: RunSummary | null;
}

export interface ModelPage {
  model: ModelView;
  history: AliasMoveView[];
  monitoring: MonitoringPoint[];
  runs: RunSummary[];
}

export interface LineageView {
  relation: string;
  kind: string;
  id: string;
  /** For an artifact: where it is, its hash and size. */
  artifact?: { uri: string; sha256: string; bytes: number; mediaType: string };
}

export interface VersionPage {
  model: ModelView;
  version: ModelView['versions'][number];
  metrics: Record<string, unknown>;
  inputSignature: unknown;
  lineage: LineageView[];
  trainingRun: RunSummary | null;
  /** Tenures of this version in any alias. */
  tenures: AliasMoveView[];
}

export interface RunPage {
  run: RunSummary;
  steps: StepView[];
  /** Versions this run registered. */
  versions: Array<{ model: string; version: number; status: string }>;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function point(r: { window_end: Date; breach: boolean; figures: Record<string, unknown>; version: number | null }): MonitoringPoint {
  const f = r.figures as {
    level?: string;
    version?: number;
    rows?: number;
    labeledRows?: number;
    features?: Record<string, { psi?: number | null }>;
    prediction?: { psi?: number | null };
    performance?: { auc?: number | null };
  };
  let maxFeaturePsi: number | null = null;
  let maxFeature: string | null = null;
  for (const [name, x] of Object.entries(f.features ?? {})) {
    const psi = num(x?.psi);
    if (psi !== null && (maxFeaturePsi === null || psi > maxFeaturePsi)) {
      maxFeaturePsi = psi;
      maxFeature = name;
    }
  }
  return {
    windowEnd: r.window_end,
    version: r.version ?? num(f.version),
    level: typeof f.level === 'string' ? f.level : 'unknown',
    breach: r.breach,
    rows: num(f.rows),
    labeledRows: num(f.labeledRows),
    predictionPsi: num(f.prediction?.psi),
    maxFeaturePsi,
    maxFeature,
    onlineAuc: num(f.performance?.auc),
  };
}

async function runSummaries(db: Kysely<Database>, where: { model?: string; ids?: string[]; limit: number }): Promise<RunSummary[]> {
  let q = db.selectFrom('pipeline_runs').select(['id', 'workflow_id', 'run_id', 'pipeline', 'model_name', 'status', 'code_version', 'started_at', 'finished_at']).orderBy('started_at', 'desc').orderBy('id', 'desc').limit(where.limit);
  if (where.model !== undefined) q = q.where('model_name', '=', where.model);
  if (where.ids) {
    if (!where.ids.length) return [];
    q = q.where('id', 'in', where.ids);
  }
  const runs = await q.execute();
  if (!runs.length) return [];
  const counts = await db
    .selectFrom('step_runs')
    .select(['pipeline_run_id', 'status', sql<number>`count(*)::int`.as('n')])
    .where(
      'pipeline_run_id',
      'in',
      runs.map((r) => r.id),
    )
    .groupBy(['pipeline_run_id', 'status'])
    .execute();
  return runs.map((r) => ({
    id: String(r.id),
    workflowId: r.workflow_id,
    runId: r.run_id,
    pipeline: r.pipeline,
    model: r.model_name,
    status: r.status,
    codeVersion: r.code_version,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    steps: Object.fromEntries(counts.filter((c) => String(c.pipeline_run_id) === String(r.id)).map((c) => [c.status, c.n])),
  }));
}

async function monitoringSeries(db: Kysely<Database>, modelId: string, limit: number): Promise<MonitoringPoint[]> {
  const rows = await db
    .selectFrom('monitoring_reports as r')
    .leftJoin('model_versions as v', 'v.id', 'r.model_version_id')
    .select(['r.window_end', 'r.breach', 'r.figures', 'v.version'])
    .where('r.model_id', '=', modelId)
    .where('r.kind', '=', 'check')
    .orderBy('r.window_end', 'desc')
    .orderBy('r.id', 'desc')
    .limit(limit)
    .execute();
  return rows.reverse().map((r) => point({ window_end: r.window_end, breach: r.breach, figures: r.figures as Record<string, unknown>, version: r.version }));
}

async function modelId(db: Kysely<Database>, name: string): Promise<string> {
  const m = await db.selectFrom('models').select('id').where('name', '=', name).executeTakeFirst();
  if (!m) throw new NotFound(`no model named ${JSON.stringify(name)} in the registry`);
  return m.id;
}

export async function loadOverview(db: Kysely<Database>): Promise<ModelSummary[]> {
  const models = await listModels(db);
  return Promise.all(
    models.map(async (model) => {
      const id = await modelId(db, model.name);
      const [latest] = await monitoringSeries(db, id, 1);
      const [lastRun] = await runSummaries(db, { model: model.name, limit: 1 });
      return { model, latestCheck: latest ?? null, lastRun: lastRun ?? null };
    }),
  );
}

export async function loadModel(db: Kysely<Database>, name: string, opts: { monitoringPoints?: number; runs?: number } = {}): Promise<ModelPage> {
  const id = await modelId(db, name);
  const [[model], history, monitoring, runs] = await Promise.all([
    listModels(db, name),
    listAliasHistory(db, name),
    monitoringSeries(db, id, opts.monitoringPoints ?? 500),
    runSummaries(db, { model: name, limit: opts.runs ?? 50 }),
  ]);
  return { model: model!, history, monitoring, runs };
}

export async function loadVersion(db: Kysely<Database>, name: string, version: number): Promise<VersionPage> {
  const id = await modelId(db, name);
  const row = await db.selectFrom('model_versions').selectAll().where('model_id', '=', id).where('version', '=', version).executeTakeFirst();
  if (!row) throw new NotFound(`${name} has no version ${version}`);
  const [[model], history, edges] = await Promise.all([
    listModels(db, name),
    listAliasHistory(db, name),
    db.selectFrom('lineage_edges').selectAll().where('to_kind', '=', 'model_version').where('to_id', '=', row.id).orderBy('id').execute(),
  ]);
  const artifactIds = edges.filter((e) => e.from_kind === 'artifact').map((e) => e.from_id);
  const artifacts = artifactIds.length ? await db.selectFrom('artifacts').selectAll().where('id', 'in', artifactIds).execute() : [];
  const byId = new Map(artifacts.map((a) => [String(a.id), a]));
  const lineage: LineageView[] = edges.map((e) => {
    const a = e.from_kind === 'artifact' ? byId.get(String(e.from_id)) : undefined;
    return { relation: e.relation, kind: e.from_kind, id: e.from_id, ...(a ? { artifact: { uri: a.uri, sha256: a.sha256, bytes: Number(a.bytes), mediaType: a.media_type } } : {}) };
  });
  const [trainingRun] = row.training_run_id ? await runSummaries(db, { ids: [row.training_run_id], limit: 1 }) : [];
  return {
    model: model!,
    version: model!.versions.find((v) => v.version === version)!,
    metrics: (row.metrics ?? {}) as Record<string, unknown>,
    inputSignature: row.input_signature,
    lineage,
    trainingRun: trainingRun ?? null,
    tenures: history.filter((h) => h.version === version),
  };
}

export async function loadRuns(db: Kysely<Database>, limit = 200): Promise<RunSummary[]> {
  return runSummaries(db, { limit });
}

export async function loadRun(db: Kysely<Database>, id: string): Promise<RunPage> {
  if (!/^\d{1,18}$/.test(id)) throw new NotFound(`no pipeline run ${JSON.stringify(id)}`);
  const [run] = await runSummaries(db, { ids: [id], limit: 1 });
  if (!run) throw new NotFound(`no pipeline run ${id}`);
  const [steps, versions] = await Promise.all([
    db.selectFrom('step_runs').selectAll().where('pipeline_run_id', '=', id).orderBy('started_at').orderBy('id').execute(),
    db
      .selectFrom('model_versions as v')
      .innerJoin('models as m', 'm.id', 'v.model_id')
      .select(['m.name', 'v.version', 'v.status'])
      .where('v.training_run_id', '=', id)
      .orderBy('v.version')
      .execute(),
  ]);
  return {
    run,
    steps: steps.map((s) => ({
      name: s.step_name,
      status: s.status,
      attempts: s.attempts,
      worker: s.worker,
      startedAt: s.started_at,
      finishedAt: s.finished_at,
      durationMs: s.duration_ms,
      error: s.error,
      cacheKey: s.cache_key,
    })),
    versions: versions.map((v) => ({ model: v.name, version: v.version, status: v.status })),
  };
}

export type { Alias, AliasMoveView, ModelView };
