import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { loadConfig } from '../infra/config';
import { createDb, redactUrl } from '../infra/db/connection';
import { canConnect, tryConnect } from '../infra/postgres';
import type { Alias, Database } from '../infra/db/schema';
import { aliasHistory, aliasesAt, getModelByName } from '../infra/db/repositories';
import { ConfigError, UserFacingError, describeError } from '../infra/errors';

/**
 * Read-only access to the model registry for the CLI. It finds the metadata store the way the
 * workers do (DATABASE_URL, else the local server's `mlops` database, else the PGlite socket of
 * a running `npm run dev`), but never creates a database, migrates or starts PGlite itself: a
 * second PGlite on the dev stack's data folder would corrupt it.
 */

export interface Registry {
  db: Kysely<Database>;
  url: string;
  close(): Promise<void>;
}

export async function openRegistry(env: NodeJS.ProcessEnv = process.env): Promise<Registry> {
  const config = loadConfig(env);
  let url: string | undefined;
  if (config.databaseUrl) {
    try {
      await (await tryConnect(config.databaseUrl, 5000)).end();
    } catch (err) {
      throw new ConfigError(`DATABASE_URL: cannot connect to ${redactUrl(config.databaseUrl)}: ${describeError(err)}`);
    }
    url = config.databaseUrl;
  } else {
    const candidates: string[] = [];
    if (config.localPostgresUrl) {
      const u = new URL(config.localPostgresUrl);
      u.pathname = `/${config.databaseName}`;
      candidates.push(u.toString());
    }
    const socketDir = path.join(config.stateDir, 'pglite', 'run');
    if (existsSync(path.join(socketDir, '.s.PGSQL.5432'))) candidates.push(`postgresql://postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}`);
    for (const c of candidates) {
      if (await canConnect(c, 2000)) {
        url = c;
        break;
      }
    }
    if (!url) throw new ConfigError('no metadata store found: set DATABASE_URL, or start the dev stack (npm run dev) so that its PostgreSQL or PGlite answers');
  }
  const db = createDb(url, { max: 2, applicationName: 'mlops-cli', schema: config.databaseSchema });
  return { db, url, close: () => db.destroy() };
}

export interface VersionView {
  version: number;
  status: 'registered' | 'rejected';
  createdAt: string;
  aliases: Alias[];
  /** What the version predicts; absent: binary. */
  task?: 'regression' | 'multiclass';
  /** The headline figures of its task; the registry row holds slices, lineage and checks as well. */
  metrics: { auc?: number; logLoss?: number; accuracy?: number; precision?: number; recall?: number; f1?: number; expectedCalibrationError?: number; rows?: number; rmse?: number; mae?: number; r2?: number; macroF1?: number };
  baselineAuc?: number;
  rejectionReasons: string[];
  trainingWorkflowId?: string;
}

export interface ModelView {
  name: string;
  description: string | null;
  createdAt: string;
  aliases: Partial<Record<Alias, number>>;
  versions: VersionView[];
}

const HEADLINE = ['auc', 'logLoss', 'accuracy', 'precision', 'recall', 'f1', 'expectedCalibrationError', 'rows', 'rmse', 'mae', 'r2', 'macroF1'] as const;

function headline(metrics: Record<string, unknown>): VersionView['metrics'] {
  const out: VersionView['metrics'] = {};
  for (const k of HEADLINE) if (typeof metrics[k] === 'number') out[k] = metrics[k];
  return out;
}

export async function listModels(db: Kysely<Database>, model?: string): Promise<ModelView[]> {
  try {
    let q = db.selectFrom('models').select(['id', 'name', 'description', 'created_at']).orderBy('name');
    if (model) q = q.where('name', '=', model);
    const models = await q.execute();
    if (model && !models.length) throw new UserFacingError(`no model named ${JSON.stringify(model)} in the registry`);
    if (!models.length) return [];
    const ids = models.map((m) => m.id);
    const [versions, aliases] = await Promise.all([
      db
        .selectFrom('model_versions')
        .leftJoin('pipeline_runs', 'pipeline_runs.id', 'model_versions.training_run_id')
        .select(['model_versions.id', 'model_versions.model_id', 'model_versions.version', 'model_versions.status', 'model_versions.metrics', 'model_versions.rejection_reasons', 'model_versions.created_at', 'pipeline_runs.workflow_id'])
        .where('model_versions.model_id', 'in', ids)
        .orderBy('model_versions.version')
        .execute(),
      db.selectFrom('model_aliases').select(['model_id', 'alias', 'model_version_id']).where('model_id', 'in', ids).execute(),
    ]);
    return models.map((m) => {
      const mine = versions.filter((v) => v.model_id === m.id);
      const byVersionId = new Map(mine.map((v) => [v.id, v.version]));
      const modelAliases: Partial<Record<Alias, number>> = {};
      for (const a of aliases) if (a.model_id === m.id && byVersionId.has(a.model_version_id)) modelAliases[a.alias] = byVersionId.get(a.model_version_id)!;
      return {
        name: m.name,
        description: m.description,
        createdAt: m.created_at.toISOString(),
        aliases: modelAliases,
        versions: mine.map((v) => {
          const metrics = (v.metrics ?? {}) as Record<string, unknown>;
          const baseline = metrics.baseline as { auc?: unknown } | undefined;
          return {
            version: v.version,
            status: v.status,
            createdAt: v.created_at.toISOString(),
            aliases: (Object.keys(modelAliases) as Alias[]).filter((a) => modelAliases[a] === v.version),
            ...(metrics.task === 'regression' || metrics.task === 'multiclass' ? { task: metrics.task } : {}),
            metrics: headline(metrics),
            ...(typeof baseline?.auc === 'number' ? { baselineAuc: baseline.auc } : {}),
            rejectionReasons: v.rejection_reasons ?? [],
            ...(v.workflow_id ? { trainingWorkflowId: v.workflow_id } : {}),
          };
        }),
      };
    });
  } catch (err) {
    // 42P01 undefined_table: the store was never migrated, so nothing was ever registered.
    if ((err as { code?: string }).code === '42P01') throw new UserFacingError('the metadata store has no model registry yet (npm run migrate, or start a worker once)');
    throw err;
  }
}

export interface AliasMoveView {
  alias: Alias;
  version: number;
  from: number | null;
  validFrom: string;
  validUntil: string | null;
  kind: string;
  endedBy: string | null;
  movedBy: string | null;
  reason: string | null;
  details: Record<string, unknown>;
}

/** Every move of a model's aliases, oldest first; with `at`, only the tenures open at that time. */
export async function listAliasHistory(db: Kysely<Database>, model: string, opts: { alias?: Alias; at?: Date } = {}): Promise<AliasMoveView[]> {
  const m = await getModelByName(db, model);
  if (!m) throw new UserFacingError(`no model named ${JSON.stringify(model)} in the registry`);
  return (opts.at ? await aliasesAt(db, m.id, opts.at, opts.alias) : await aliasHistory(db, m.id, opts.alias)).map(moveView);
}

function moveView(h: Awaited<ReturnType<typeof aliasHistory>>[number]): AliasMoveView {
  return {
    alias: h.alias,
    version: h.version,
    from: h.from_version ?? null,
    validFrom: h.valid_from.toISOString(),
    validUntil: h.valid_until ? h.valid_until.toISOString() : null,
    kind: h.kind,
    endedBy: h.ended_by,
    movedBy: h.moved_by,
    reason: h.reason,
    details: (h.details ?? {}) as Record<string, unknown>,
  };
}
