import { sql, type Kysely } from 'kysely';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import type { ArtifactStore } from '../infra/artifacts';
import type { Config } from '../infra/config';
import type { Database } from '../infra/db/schema';
import { getAlias, getModelByName, getModelVersion, setAlias, upsertDeployment } from '../infra/db/repositories';
import { psi } from './ml/drift';
import { withDuckDb } from './data/duck';
import { loadTable } from './data/prepare';
import { localArtifact, readVerified } from './data/sources';
import { quantile } from './ml/metrics';
import { createSession, featuresOfSignature, scoreTable } from './training/scoring';

/**
 * Deployment activities for the promotion workflow: they drive the model server through its
 * admin API and read what it logged. Each is idempotent: loading a loaded version, setting the
 * same traffic or moving an alias to where it already is changes nothing.
 */

export interface DeploymentDeps {
  db: Kysely<Database>;
  artifacts: ArtifactStore;
  config: Pick<Config, 'modelServer'>;
}

export interface Traffic {
  stable: number;
  canary?: number;
  canaryWeight?: number;
  shadow?: number;
}

export interface CanaryFigures {
  stableRows: number;
  canaryRows: number;
  stableP99Ms: number | null;
  canaryP99Ms: number | null;
  /** PSI of the canary's prediction distribution against the stable one's (10 bins). */
  predictionPsi: number | null;
  canaryErrors: number;
}

async function admin(deps: DeploymentDeps, path: string, body: unknown): Promise<unknown> {
  const { url, adminToken } = deps.config.modelServer;
  if (!adminToken) throw ApplicationFailure.nonRetryable('MLOPS_ADMIN_TOKEN is not set on this worker: it cannot drive the model server', 'ConfigError');
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 400 && res.status < 500) throw ApplicationFailure.nonRetryable(`model server ${path}: ${res.status} ${text}`, 'ModelServerRefused');
  if (!res.ok) throw new Error(`model server ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as unknown;
}

async function versionRow(db: Kysely<Database>, model: string, version: number) {
  const m = await getModelByName(db, model);
  const mv = m ? await getModelVersion(db, m.id, version) : undefined;
  if (!m || !mv) throw ApplicationFailure.nonRetryable(`model ${model} has no version ${version}`, 'NotFound');
  return { model: m, mv };
}

const percentile = (xs: number[], q: number) => (xs.length ? quantile(xs, q) : null);

export function createDeploymentActivities(deps: DeploymentDeps) {
  return {
    async currentProduction(input: { model: string }): Promise<number | null> {
      const m = await getModelByName(deps.db, input.model);
      if (!m) throw ApplicationFailure.nonRetryable(`model ${input.model} is not in the registry`, 'NotFound');
      return (await getAlias(deps.db, m.id, 'production'))?.version ?? null;
    },

    /** The version production replaced most recently (still loaded, at weight 0): what a rollback returns to. */
    async previousProduction(input: { model: string }): Promise<number | null> {
      const row = await deps.db
        .selectFrom('deployments')
        .innerJoin('model_versions', 'model_versions.id', 'deployments.model_version_id')
        .innerJoin('models', 'models.id', 'model_versions.model_id')
        .select('model_versions.version')
        .where('models.name', '=', input.model)
        .where('deployments.slot', '=', 'serving')
        .where('deployments.status', '=', 'standby')
        .where('model_versions.status', '=', 'registered')
        .orderBy('deployments.updated_at', 'desc')
        .executeTakeFirst();
      return row?.version ?? null;
    },

    async deploy(input: { model: string; version: number; slot: string }): Promise<void> {
      const { mv } = await versionRow(deps.db, input.model, input.version);
      if (mv.status !== 'registered') throw ApplicationFailure.nonRetryable(`model ${input.model} v${input.version} was rejected; it cannot be deployed`, 'Rejected');
      await admin(deps, `/admin/models/${input.model}/load`, { version: input.version });
      await upsertDeployment(deps.db, { modelVersionId: mv.id, slot: input.slot, endpoint: deps.config.modelServer.url, status: 'loaded', weight: 0 });
    },

    async setTraffic(input: { model: string; traffic: Traffic }): Promise<void> {
      const t = input.traffic;
      await admin(deps, `/admin/models/${input.model}/traffic`, { stable: t.stable, canary: t.canary, canaryWeight: t.canaryWeight ?? 0, shadow: t.shadow });
      const w = t.canary !== undefined ? (t.canaryWeight ?? 0) : 0;
      const stable = await versionRow(deps.db, input.model, t.stable);
      const canary = t.canary !== undefined && t.canary !== t.stable ? await versionRow(deps.db, input.model, t.canary) : undefined;
      const production = await getAlias(deps.db, stable.model.id, 'production');
      const endpoint = deps.config.modelServer.url;
      // The deployments table mirrors the server: versions without traffic keep their row at weight 0.
      await deps.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('deployments')
          .set({ weight: 0, status: sql<string>`case when status in ('stable', 'canary', 'production') then 'standby' else status end`, updated_at: sql<Date>`now()` as never })
          .where('slot', '=', 'serving')
          .where('model_version_id', 'not in', [stable.mv.id, ...(canary ? [canary.mv.id] : [])])
          .where('model_version_id', 'in', trx.selectFrom('model_versions').select('id').where('model_id', '=', stable.model.id))
          .execute();
        await upsertDeployment(trx, { modelVersionId: stable.mv.id, slot: 'serving', endpoint, status: production?.model_version_id === stable.mv.id ? 'production' : 'stable', weight: 100 - w });
        if (canary) await upsertDeployment(trx, { modelVersionId: canary.mv.id, slot: 'serving', endpoint, status: 'canary', weight: w });
      });
    },

    /** The evaluation sample through the HTTP API must reproduce the offline scores. */
    async contractTest(input: { model: string; version: number; rows: number }): Promise<{ rows: number; maxAbsDiff: number }> {
      const { mv } = await versionRow(deps.db, input.model, input.version);
      const lineage = (mv.metrics as { lineage?: { test?: { uri: string; sha256: string } } }).lineage;
      if (!lineage?.test) throw ApplicationFailure.nonRetryable(`model ${input.model} v${input.version} has no evaluation sample in its lineage`, 'NoSample');
      const features = featuresOfSignature(mv.input_signature as Array<{ name: string; datatype: string }>);
      const file = await localArtifact(deps.artifacts, lineage.test, '.parquet');
      const full = await withDuckDb((c) => loadTable(file, features, c));
      const n = Math.min(input.rows, full.rows);
      const sample = { ...full, rows: n, numeric: Object.fromEntries(Object.entries(full.numeric).map(([k, v]) => [k, v.slice(0, n)])), categorical: Object.fromEntries(Object.entries(full.categorical).map(([k, v]) => [k, v.slice(0, n)])), label: full.label.slice(0, n) };
      const artifact = await deps.db.selectFrom('artifacts').selectAll().where('id', '=', mv.onnx_artifact_id!).executeTakeFirstOrThrow();
      const session = await createSession(await readVerified(deps.artifacts, artifact));
      const offline = await scoreTable(session, sample, features);
      await session.release();
      const body = { inputs: features.map((f) => ({ name: f.name, datatype: f.kind === 'numeric' ? 'FP32' : 'BYTES', shape: [n, 1], data: f.kind === 'numeric' ? Array.from(sample.numeric[f.name]!, (v) => (Number.isNaN(v) ? null : v)) : sample.categorical[f.name] })) };
      const res = await fetch(`${deps.config.modelServer.url}/v2/models/${input.model}/versions/${input.version}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `contract-${input.model}-v${input.version}` }, body: JSON.stringify(body) });
      if (!res.ok) throw ApplicationFailure.nonRetryable(`contract test: the server answered ${res.status} ${await res.text()}`, 'ContractFailed');
      const served = ((await res.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data;
      let maxAbsDiff = 0;
      for (let i = 0; i < n; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(served[i]! - offline[i]!));
      return { rows: n, maxAbsDiff };
    },

    /** Bounded load on one pinned version: p99 latency and error rate as the client sees them. */
    async loadTest(input: { model: string; version: number; seconds: number; concurrency: number }): Promise<{ requests: number; errorRate: number; p99Ms: number; p50Ms: number }> {
      const { mv } = await versionRow(deps.db, input.model, input.version);
      const sig = mv.input_signature as Array<{ name: string; datatype: string }>;
      const body = JSON.stringify({ inputs: sig.map((s) => ({ name: s.name, datatype: s.datatype, shape: [1, 1], data: [s.datatype === 'BYTES' ? 'X' : 1] })) });
      const url = `${deps.config.modelServer.url}/v2/models/${input.model}/versions/${input.version}/infer`;
      const latencies: number[] = [];
      let errors = 0;
      const until = performance.now() + input.seconds * 1000;
      await Promise.all(
        Array.from({ length: input.concurrency }, async () => {
          while (performance.now() < until) {
            const t = performance.now();
            try {
              const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `load-${Math.random().toString(36).slice(2)}` }, body });
              await res.arrayBuffer();
              if (!res.ok) errors++;
            } catch {
              errors++;
            }
            latencies.push(performance.now() - t);
          }
        }),
      );
      heartbeat();
      return { requests: latencies.length, errorRate: latencies.length ? errors / latencies.length : 1, p99Ms: percentile(latencies, 0.99) ?? Infinity, p50Ms: percentile(latencies, 0.5) ?? Infinity };
    },

    /**
     * What the server logged for stable and the candidate since `since`: rows, p99 latency,
     * prediction shift. With `role`, only the application's stable rows and the candidate's rows
     * in that role (canary or shadow) count; without it (runs started before), every row but
     * shadow ones, as before.
     */
    async canaryFigures(input: { model: string; stable: number; canary: number; since: string; role?: 'canary' | 'shadow' }): Promise<CanaryFigures> {
      const s = await versionRow(deps.db, input.model, input.stable);
      const c = await versionRow(deps.db, input.model, input.canary);
      const rows = await deps.db
        .selectFrom('prediction_log')
        .select(['model_version_id', 'latency_ms', sql<number>`(outputs->>'probability')::float8`.as('p')])
        .where('model_id', '=', s.model.id)
        .where('ts', '>=', new Date(input.since))
        .where('model_version_id', 'in', [s.mv.id, c.mv.id])
        .where(input.role ? sql<boolean>`outputs->>'role' in ('stable', ${input.role})` : sql<boolean>`outputs->>'role' <> 'shadow'`)
        .select(sql<string>`outputs->>'role'`.as('role'))
        .execute();
      const of = (id: string) => rows.filter((r) => r.model_version_id === id && (!input.role || r.role === (id === c.mv.id ? input.role : 'stable')));
      const hist = (xs: Array<{ p: number }>) => {
        const h = new Array<number>(10).fill(0);
        for (const x of xs) h[Math.min(9, Math.max(0, Math.floor(x.p * 10)))]!++;
        return h;
      };
      const stable = of(s.mv.id);
      const canary = of(c.mv.id);
      const metrics = await fetch(`${deps.config.modelServer.url}/metrics`).then((r) => r.text());
      const m = new RegExp(`mlops_inference_errors_total\\{model="${input.model}",version="${input.canary}",role="${input.role ?? 'canary'}"\\} (\\d+)`).exec(metrics);
      return {
        stableRows: stable.length,
        canaryRows: canary.length,
        stableP99Ms: percentile(stable.map((r) => r.latency_ms), 0.99),
        canaryP99Ms: percentile(canary.map((r) => r.latency_ms), 0.99),
        predictionPsi: stable.length && canary.length ? psi(hist(stable), hist(canary)) : null,
        canaryErrors: m ? Number(m[1]) : 0,
      };
    },

    /** Moves `production` (one row per model and alias: exactly one production version). */
    async setProduction(input: { model: string; version: number }): Promise<void> {
      const { model, mv } = await versionRow(deps.db, input.model, input.version);
      await deps.db.transaction().execute(async (trx) => {
        await setAlias(trx, model.id, 'production', mv.id);
        // The version it replaces stays loaded for an instant rollback, without traffic.
        await trx
          .updateTable('deployments')
          .set({ status: 'standby', weight: 0, updated_at: sql<Date>`now()` as never })
          .where('slot', '=', 'serving')
          .where('model_version_id', '!=', mv.id)
          .where('model_version_id', 'in', trx.selectFrom('model_versions').select('id').where('model_id', '=', model.id))
          .execute();
        await upsertDeployment(trx, { modelVersionId: mv.id, slot: 'serving', endpoint: deps.config.modelServer.url, status: 'production', weight: 100 });
      });
    },
  };
}

export type DeploymentActivities = ReturnType<typeof createDeploymentActivities>;
