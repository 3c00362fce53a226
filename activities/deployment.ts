import { sql, type Kysely } from 'kysely';
import { ApplicationFailure, Context, activityInfo, heartbeat } from '@temporalio/activity';
import type { ArtifactStore } from '../infra/artifacts';
import type { Config } from '../infra/config';
import type { Database } from '../infra/db/schema';
import { traceHeaders } from '../infra/trace-context';
import { changeServingState, countServingErrors, getAlias, getModelByName, getModelVersion, getServingTraffic, labelValue, liveModelServers, rollbackTarget, setAlias, upsertDeployment } from '../infra/db/repositories';
import { histogram, psi, quantileEdges } from './ml/drift';
import { MULTICLASS_LABEL, outputOf } from './ml/task-output';
import { multiclassRow } from './ml/monitoring/figures';
import type { TaskKind } from '../workflows/contracts/training-spec';
import { withDuckDb } from './data/duck';
import { loadTable } from './data/prepare';
import { localArtifact, readVerified } from './data/sources';
import { quantile, rmse } from './ml/metrics';
import { requestInputs } from './ml/model-inputs';
import { answerOfSignature, createSession, featuresOfSignature, feedsFor, scoreTable, taskOfSignature } from './training/scoring';
import { signatureDiff } from './training/gates';

/**
 * Deployment activities for the promotion workflow. `deploy` and `setTraffic` write the serving
 * state in PostgreSQL (with the deployments mirror, in one transaction), which every model-server
 * replica follows, then wait — heartbeating — until every live server has applied that
 * generation; the others read what the servers logged. Each is idempotent: loading a loaded
 * version, setting the same traffic or moving an alias to where it already is changes nothing
 * the servers serve.
 */

export interface DeploymentDeps {
  db: Kysely<Database>;
  artifacts: ArtifactStore;
  config: Pick<Config, 'modelServer'>;
  /** How long `deploy` and `setTraffic` wait for the live model servers to apply a change (default 60 s; the activity's timeout is 2 minutes). */
  servingWaitMs?: number;
}

export interface Traffic {
  stable: number;
  canary?: number;
  canaryWeight?: number;
  shadow?: number;
}

type ScoredRow = { p: number | null; y: number | null };

/** Rows whose label arrived and whose score is a number: what labelled performance is computed on. */
const labelledRows = (xs: ScoredRow[]) => xs.filter((x): x is { p: number; y: number } => x.y !== null && x.p !== null && Number.isFinite(x.p));

/**
 * Log loss of stable and candidate on their rows whose labels arrived (feedback labels a shadow
 * row with its request): how each predicts, once ground truth is there. null without labels.
 */
function labelledPerformance(stable: ScoredRow[], candidate: ScoredRow[]): Pick<CanaryFigures, 'stableLabeled' | 'canaryLabeled' | 'stableLogLoss' | 'canaryLogLoss'> {
  const loss = (xs: ScoredRow[]) => {
    const labelled = labelledRows(xs);
    if (!labelled.length) return { n: 0, loss: null };
    let sum = 0;
    for (const x of labelled) {
      const p = Math.min(1 - 1e-7, Math.max(1e-7, x.p));
      sum -= x.y === 1 ? Math.log(p) : Math.log(1 - p);
    }
    return { n: labelled.length, loss: sum / labelled.length };
  };
  const a = loss(stable);
  const b = loss(candidate);
  return { stableLabeled: a.n, canaryLabeled: b.n, stableLogLoss: a.loss, canaryLogLoss: b.loss };
}

/** RMSE of stable and candidate on their labelled rows: a regression's counterpart of labelledPerformance. */
function labelledRmse(stable: ScoredRow[], candidate: ScoredRow[]): Pick<CanaryFigures, 'stableLabeled' | 'canaryLabeled' | 'stableRmse' | 'canaryRmse'> {
  const of = (xs: ScoredRow[]) => {
    const labelled = labelledRows(xs);
    if (!labelled.length) return { n: 0, rmse: null };
    return { n: labelled.length, rmse: rmse(labelled.map((x) => x.p), labelled.map((x) => x.y)) };
  };
  const a = of(stable);
  const b = of(candidate);
  return { stableLabeled: a.n, canaryLabeled: b.n, stableRmse: a.rmse, canaryRmse: b.rmse };
}

/** Ten equal-width bins of [0, 1]: probabilities (the lower-bound edges of drift.ts's histogram). */
const PROBABILITY_EDGES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/**
 * PSI of the candidate's scores against stable's: probabilities on ten equal-width bins,
 * a regression's predictions, which have no fixed range, on stable's deciles. A missing score
 * counts in no bin; a shift that cannot be computed is no figure (the stage fails by name).
 */
export function predictionShift(task: TaskKind, stable: ScoredRow[], candidate: ScoredRow[]): number | null {
  const scores = (xs: ScoredRow[]) => Float64Array.from(xs, (x) => x.p ?? NaN);
  const s = scores(stable);
  const edges = task === 'regression' ? quantileEdges(s, 10) : PROBABILITY_EDGES;
  const shift = psi(histogram(s, edges), histogram(scores(candidate), edges));
  return Number.isFinite(shift) ? shift : null;
}

export interface CanaryFigures {
  stableRows: number;
  canaryRows: number;
  stableP99Ms: number | null;
  canaryP99Ms: number | null;
  /** PSI of the canary's prediction distribution against the stable one's (10 bins). */
  predictionPsi: number | null;
  canaryErrors: number;
  /** Rows with a label, and log loss on them (absent in figures of runs before labels were read). */
  stableLabeled?: number;
  canaryLabeled?: number;
  stableLogLoss?: number | null;
  canaryLogLoss?: number | null;
  /** A regression's figures carry its task, and RMSE on labelled rows instead of log loss; a multiclass model's its task, its log loss that of the true class's probability and its PSI on the predicted classes' shares. */
  task?: 'regression' | 'multiclass';
  stableRmse?: number | null;
  canaryRmse?: number | null;
}

type CanaryInput = { model: string; stable: number; canary: number; since: string; role?: 'canary' | 'shadow' };
type VersionRow = Awaited<ReturnType<typeof versionRow>>;

/**
 * Failed requests of the candidate in its role within [since, now], across every replica, once
 * each live server has written its counts past now (a heartbeat after it).
 */
async function candidateErrors(deps: DeploymentDeps, modelVersionId: string, input: CanaryInput): Promise<number> {
  const until = (await sql<{ now: Date }>`select now() as now`.execute(deps.db)).rows[0]!.now;
  for (let i = 0; i < 25; i++) {
    const servers = await liveModelServers(deps.db);
    if (servers.every((x) => new Date(x.seen_at).getTime() > until.getTime())) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return countServingErrors(deps.db, { modelVersionId, role: input.role ?? 'canary', since: new Date(input.since), until });
}

/**
 * The canary figures of two multiclass versions: PSI of the candidate's predicted classes'
 * shares against stable's, and on labelled rows the log loss of the true class's probability.
 * Both must have the same classes in the same order, or their probabilities mean other things.
 */
async function multiclassCanaryFigures(deps: DeploymentDeps, input: CanaryInput, s: VersionRow, c: VersionRow): Promise<CanaryFigures> {
  const classes = answerOfSignature(s.mv.output_signature)!.classes!;
  const theirs = answerOfSignature(c.mv.output_signature)!.classes!;
  if (JSON.stringify(classes) !== JSON.stringify(theirs)) {
    throw ApplicationFailure.nonRetryable(
      `model ${input.model}: stable v${s.mv.version} has classes ${JSON.stringify(classes)}, candidate v${c.mv.version} ${JSON.stringify(theirs)}; canary and shadow figures compare two models of the same classes (promote a change of classes with strategy direct)`,
      'UnsupportedTask',
    );
  }
  const rows = await deps.db
    .selectFrom('prediction_log')
    .select(['model_version_id', 'latency_ms', 'label', sql<unknown>`outputs->'probabilities'`.as('probs'), sql<string>`outputs->>'role'`.as('role')])
    .where('model_id', '=', s.model.id)
    .where('ts', '>=', new Date(input.since))
    .where('model_version_id', 'in', [s.mv.id, c.mv.id])
    .where(input.role ? sql<boolean>`outputs->>'role' in ('stable', ${input.role})` : sql<boolean>`outputs->>'role' <> 'shadow'`)
    .execute();
  const of = (id: string) => rows.filter((r) => r.model_version_id === id && (!input.role || r.role === (id === c.mv.id ? input.role : 'stable')));
  const stable = of(s.mv.id).map((r) => ({ ...r, ...multiclassRow(r.probs, r.label, classes) }));
  const canary = of(c.mv.id).map((r) => ({ ...r, ...multiclassRow(r.probs, r.label, classes) }));
  const shares = (xs: typeof stable) => {
    const counts = new Array<number>(classes.length).fill(0);
    for (const x of xs) if (x.predicted !== null) counts[x.predicted]!++;
    return counts;
  };
  const shift = stable.length && canary.length ? psi(shares(stable), shares(canary)) : NaN;
  const loss = (xs: typeof stable) => {
    const labelled = xs.filter((x) => x.trueProbability !== null);
    return { n: labelled.length, loss: labelled.length ? -labelled.reduce((a, x) => a + Math.log(Math.min(1, Math.max(1e-7, x.trueProbability!))), 0) / labelled.length : null };
  };
  const a = loss(stable);
  const b = loss(canary);
  return {
    stableRows: stable.length,
    canaryRows: canary.length,
    stableP99Ms: percentile(stable.map((r) => r.latency_ms), 0.99),
    canaryP99Ms: percentile(canary.map((r) => r.latency_ms), 0.99),
    predictionPsi: Number.isFinite(shift) ? shift : null,
    canaryErrors: await candidateErrors(deps, c.mv.id, input),
    task: 'multiclass',
    stableLabeled: a.n,
    canaryLabeled: b.n,
    stableLogLoss: a.loss,
    canaryLogLoss: b.loss,
  };
}

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // called outside an activity (tests, scripts)
  }
}

/** Who changed the serving state: the workflow that ran the activity. */
function changedBy(): string {
  const info = activityContext()?.info;
  return info?.workflowExecution?.workflowId ?? 'activity';
}

/**
 * Waits until every live model server (heartbeat within three of its intervals) serves
 * `generation` of the model — for a deploy, with the version loaded — heartbeating meanwhile.
 * No live server, or one that does not catch up within the bound: a retryable failure that names
 * them. A server that cannot load the version at all (rejected, no ONNX, bytes that do not match
 * the registry) fails it at once, non-retryable.
 */
async function waitForServers(deps: DeploymentDeps, w: { model: string; modelId: string; generation: number; version?: number }): Promise<void> {
  const ctx = activityContext();
  const timeoutMs = deps.servingWaitMs ?? 60_000;
  const started = Date.now();
  for (;;) {
    const servers = await liveModelServers(deps.db);
    const lagging = servers.filter((s) => (s.applied[w.modelId] ?? -1) < w.generation);
    if (servers.length && !lagging.length) return;
    const refused = lagging.flatMap((s) => s.load_errors.filter((e) => e.model === w.model && e.version === w.version && e.permanent).map((e) => `${s.endpoint}: ${e.message}`));
    if (refused.length) throw ApplicationFailure.nonRetryable(`model server cannot load ${w.model} v${w.version}: ${refused.join('; ')}`, 'ModelServerRefused');
    const what = servers.length
      ? `${lagging.length} of ${servers.length} live model servers have not applied generation ${w.generation} of ${w.model}: ${lagging
          .map((s) => {
            const errors = s.load_errors.filter((e) => e.model === w.model).map((e) => `v${e.version}: ${e.message}`);
            return `${s.endpoint} (${s.id.slice(0, 8)}) at ${s.applied[w.modelId] ?? 'none'}${errors.length ? ` (${errors.join('; ')})` : ''}`;
          })
          .join(', ')}`
      : 'no live model server (none has heartbeated in model_servers within three of its heartbeat intervals)';
    if (Date.now() - started >= timeoutMs) throw ApplicationFailure.retryable(`${what}, after ${Math.round(timeoutMs / 1000)}s`, 'ModelServersBehind');
    ctx?.heartbeat({ waitingFor: w.generation, servers: servers.length, lagging: lagging.length });
    if (ctx) await ctx.sleep(200);
    else await new Promise((r) => setTimeout(r, 200));
  }
}

/** A version the servers can load: registered, with an ONNX file. */
function servable(model: string, version: number, mv: { status: string; onnx_artifact_id: string | null }): void {
  if (mv.status !== 'registered') throw ApplicationFailure.nonRetryable(`model ${model} v${version} was rejected; it cannot be served`, 'ModelServerRefused');
  if (!mv.onnx_artifact_id) throw ApplicationFailure.nonRetryable(`model ${model} v${version} has no ONNX file`, 'ModelServerRefused');
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

    /**
     * The training spec that made the production version, as a lifecycle template: a retrain of
     * a model adopted by a new lifecycle trains on that model's data and features, not on the
     * default template. null when nothing is in production or its spec was not recorded.
     */
    async productionTemplate(input: { model: string }): Promise<{ version: number; workflowId: string | null; template: Record<string, unknown> } | null> {
      const m = await getModelByName(deps.db, input.model);
      if (!m) return null;
      const prod = await getAlias(deps.db, m.id, 'production');
      if (!prod) return null;
      const row = await deps.db
        .selectFrom('model_versions')
        .leftJoin('pipeline_runs', 'pipeline_runs.id', 'model_versions.training_run_id')
        .select(['model_versions.metrics', 'pipeline_runs.spec', 'pipeline_runs.workflow_id'])
        .where('model_versions.id', '=', prod.model_version_id)
        .executeTakeFirstOrThrow();
      const lineage = (row.metrics as { lineage?: { spec?: unknown; workflowId?: string } }).lineage;
      const spec = (lineage?.spec ?? row.spec) as Record<string, unknown> | null;
      if (!spec || typeof spec !== 'object' || !spec.dataset) return null;
      const { model: _model, ...template } = spec;
      // A declared breaking change was for that version; the next one must match it again.
      const gates = template.gates && typeof template.gates === 'object' ? { ...(template.gates as Record<string, unknown>), allowSignatureChange: false } : undefined;
      return { version: prod.version, workflowId: lineage?.workflowId ?? row.workflow_id ?? null, template: { ...template, ...(gates ? { gates } : {}) } };
    },

    /**
     * What a rollback returns to, from the alias history: the version that held production
     * before the current one, skipping any whose tenure ended in a rollback.
     */
    async previousProduction(input: { model: string }): Promise<number | null> {
      const m = await getModelByName(deps.db, input.model);
      if (!m) throw ApplicationFailure.nonRetryable(`model ${input.model} is not in the registry`, 'NotFound');
      return (await rollbackTarget(deps.db, m.id, 'production'))?.version ?? null;
    },

    /** Adds the version to those the model's servers hold, and waits until every live server has loaded it. */
    async deploy(input: { model: string; version: number; slot: string }): Promise<void> {
      const { model, mv } = await versionRow(deps.db, input.model, input.version);
      if (mv.status !== 'registered') throw ApplicationFailure.nonRetryable(`model ${input.model} v${input.version} was rejected; it cannot be deployed`, 'Rejected');
      servable(input.model, input.version, mv);
      const endpoint = deps.config.modelServer.url;
      const generation = await deps.db.transaction().execute(async (trx) => {
        const g = await changeServingState(trx, { modelId: model.id, by: changedBy(), add: [mv.id] });
        await upsertDeployment(trx, { modelVersionId: mv.id, slot: input.slot, endpoint, status: 'loading', weight: 0 });
        return g;
      });
      try {
        await waitForServers(deps, { model: input.model, modelId: model.id, generation, version: input.version });
      } catch (err) {
        // A version no server can load must not keep every server unready: out of the set again (unless traffic names it).
        if (err instanceof ApplicationFailure && err.nonRetryable) {
          const t = await getServingTraffic(deps.db, model.id);
          if (!t || ![t.stable_version_id, t.canary_version_id, t.shadow_version_id].includes(mv.id)) await changeServingState(deps.db, { modelId: model.id, by: changedBy(), remove: [mv.id] });
        }
        throw err;
      }
      await upsertDeployment(deps.db, { modelVersionId: mv.id, slot: input.slot, endpoint, status: 'loaded', weight: 0 });
    },

    /** Sets the model's traffic in the serving state, and waits until every live server serves it. */
    async setTraffic(input: { model: string; traffic: Traffic }): Promise<void> {
      const t = input.traffic;
      // A canary without a weight is a caller's mistake, not "0 %": refuse it instead of guessing.
      if (t.canary !== undefined && (t.canaryWeight === undefined || !(t.canaryWeight >= 0 && t.canaryWeight <= 100))) {
        throw ApplicationFailure.nonRetryable(`traffic: a canary needs canaryWeight between 0 and 100 (got ${t.canaryWeight})`, 'ModelServerRefused');
      }
      const w = t.canary !== undefined ? t.canaryWeight! : 0;
      const stable = await versionRow(deps.db, input.model, t.stable);
      const canary = t.canary !== undefined && t.canary !== t.stable ? await versionRow(deps.db, input.model, t.canary) : undefined;
      const shadow = t.shadow !== undefined ? await versionRow(deps.db, input.model, t.shadow) : undefined;
      for (const [v, row] of [[t.stable, stable], [t.canary, canary], [t.shadow, shadow]] as const) if (row) servable(input.model, v!, row.mv);
      const production = await getAlias(deps.db, stable.model.id, 'production');
      const endpoint = deps.config.modelServer.url;
      // The serving state, and the deployments table that mirrors it (versions without traffic keep their row at weight 0), change together.
      const generation = await deps.db.transaction().execute(async (trx) => {
        const g = await changeServingState(trx, {
          modelId: stable.model.id,
          by: changedBy(),
          traffic: { stableVersionId: stable.mv.id, canaryVersionId: canary?.mv.id ?? null, canaryWeight: canary ? w : 0, shadowVersionId: shadow?.mv.id ?? null },
        });
        await trx
          .updateTable('deployments')
          .set({ weight: 0, status: sql<string>`case when status in ('stable', 'canary', 'production') then 'standby' else status end`, updated_at: sql<Date>`now()` as never })
          .where('slot', '=', 'serving')
          .where('model_version_id', 'not in', [stable.mv.id, ...(canary ? [canary.mv.id] : [])])
          .where('model_version_id', 'in', trx.selectFrom('model_versions').select('id').where('model_id', '=', stable.model.id))
          .execute();
        await upsertDeployment(trx, { modelVersionId: stable.mv.id, slot: 'serving', endpoint, status: production?.model_version_id === stable.mv.id ? 'production' : 'stable', weight: 100 - w });
        if (canary) await upsertDeployment(trx, { modelVersionId: canary.mv.id, slot: 'serving', endpoint, status: 'canary', weight: w });
        return g;
      });
      await waitForServers(deps, { model: input.model, modelId: stable.model.id, generation });
    },

    /** The evaluation sample through the HTTP API must reproduce the offline scores. */
    async contractTest(input: { model: string; version: number; rows: number }): Promise<{ rows: number; maxAbsDiff: number }> {
      const { mv } = await versionRow(deps.db, input.model, input.version);
      const lineage = (mv.metrics as { lineage?: { test?: { uri: string; sha256: string } } }).lineage;
      if (!lineage?.test) throw ApplicationFailure.nonRetryable(`model ${input.model} v${input.version} has no evaluation sample in its lineage`, 'NoSample');
      const features = featuresOfSignature(mv.input_signature as Array<{ name: string; datatype: string }>);
      const file = await localArtifact(deps.artifacts, lineage.test, '.parquet');
      const answer = answerOfSignature(mv.output_signature);
      if (!answer) throw ApplicationFailure.nonRetryable(`model ${input.model} v${input.version}: its output signature names no task's output`, 'InvalidSignature');
      const full = await withDuckDb((c) => loadTable(file, features, c, { task: answer.task, classes: answer.classes }));
      const n = Math.min(input.rows, full.rows);
      const artifact = await deps.db.selectFrom('artifacts').selectAll().where('id', '=', mv.onnx_artifact_id!).executeTakeFirstOrThrow();
      const session = await createSession(await readVerified(deps.artifacts, artifact));
      const offline = await scoreTable(session, full, features, n);
      // A multiclass answer's classes too: the graph's own label output on the same rows.
      const graphLabels = answer.classes ? Array.from((await session.run(feedsFor(full, features, 0, n), [MULTICLASS_LABEL]))[MULTICLASS_LABEL]!.data as ArrayLike<unknown>, (v) => (typeof v === 'bigint' ? Number(v) : v)) : undefined;
      await session.release();
      const body = { inputs: requestInputs(full, features, 0, n) };
      // With tracing on, the server's span of this request joins the activity's trace. The load
      // test below sends none: a span per request would weigh on the latency it measures.
      const res = await fetch(`${deps.config.modelServer.url}/v2/models/${input.model}/versions/${input.version}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': `contract-${input.model}-v${input.version}`, 'x-mlops-traffic': 'contract', ...traceHeaders() },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw ApplicationFailure.nonRetryable(`contract test: the server answered ${res.status} ${await res.text()}`, 'ContractFailed');
      const outputs = ((await res.json()) as { outputs: Array<{ name: string; data: unknown[] }> }).outputs;
      const served = outputs.find((o) => o.name === answer.output)?.data as number[] | undefined;
      if (!served || served.length !== offline.length) throw ApplicationFailure.nonRetryable(`contract test: the server's ${answer.output} has ${served?.length ?? 'no'} values for ${n} rows of ${answer.width}`, 'ContractFailed');
      let maxAbsDiff = 0;
      // null (not finite) is a difference, never a match.
      for (let i = 0; i < offline.length; i++) maxAbsDiff = Math.max(maxAbsDiff, served[i] === null ? Infinity : Math.abs(served[i]! - offline[i]!));
      if (graphLabels) {
        const labels = outputs.find((o) => o.name === MULTICLASS_LABEL)?.data;
        const wrong = graphLabels.findIndex((v, i) => labels?.[i] !== v);
        if (wrong >= 0) throw ApplicationFailure.nonRetryable(`contract test: row ${wrong}: the server answered label ${JSON.stringify(labels?.[wrong])}, the graph gives ${JSON.stringify(graphLabels[wrong])}`, 'ContractFailed');
      }
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
              const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `load-${Math.random().toString(36).slice(2)}`, 'x-mlops-traffic': 'load' }, body });
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
      // Both sides' scores must mean the same thing: a binary stable against a regression candidate has no figure to compare.
      const task = taskOfSignature(s.mv.output_signature);
      const candidateTask = taskOfSignature(c.mv.output_signature);
      if (!task || task !== candidateTask) {
        throw ApplicationFailure.nonRetryable(
          `model ${input.model}: stable v${s.mv.version} is ${task ?? 'of no known task'}, candidate v${c.mv.version} ${candidateTask ?? 'of no known task'}; canary and shadow figures compare two models of one task (promote a task change with strategy direct)`,
          'UnsupportedTask',
        );
      }
      if (task === 'multiclass') return multiclassCanaryFigures(deps, input, s, c);
      const output = outputOf(task);
      const rows = await deps.db
        .selectFrom('prediction_log')
        .select([
          'model_version_id',
          'latency_ms',
          sql<number | null>`(outputs->>${output}::text)::float8`.as('p'),
          labelValue(task).as('y'),
        ])
        .where('model_id', '=', s.model.id)
        .where('ts', '>=', new Date(input.since))
        .where('model_version_id', 'in', [s.mv.id, c.mv.id])
        .where(input.role ? sql<boolean>`outputs->>'role' in ('stable', ${input.role})` : sql<boolean>`outputs->>'role' <> 'shadow'`)
        .select(sql<string>`outputs->>'role'`.as('role'))
        .execute();
      const of = (id: string) => rows.filter((r) => r.model_version_id === id && (!input.role || r.role === (id === c.mv.id ? input.role : 'stable')));
      const stable = of(s.mv.id);
      const canary = of(c.mv.id);
      const canaryErrors = await candidateErrors(deps, c.mv.id, input);
      return {
        stableRows: stable.length,
        canaryRows: canary.length,
        stableP99Ms: percentile(stable.map((r) => r.latency_ms), 0.99),
        canaryP99Ms: percentile(canary.map((r) => r.latency_ms), 0.99),
        predictionPsi: stable.length && canary.length ? predictionShift(task, stable, canary) : null,
        canaryErrors,
        ...(task === 'regression' ? { task, ...labelledRmse(stable, canary) } : labelledPerformance(stable, canary)),
      };
    },

    /**
     * Moves `production` (one row per model and alias: exactly one production version) and
     * records the move in the alias history with the workflow that made it and why.
     */
    async setProduction(input: { model: string; version: number; kind?: 'promote' | 'rollback' | 'revert'; reason?: string; details?: Record<string, unknown> }): Promise<{ signatureChange?: { from: number; inputs: string[]; outputs: string[] } }> {
      const { model, mv } = await versionRow(deps.db, input.model, input.version);
      const info = activityInfo();
      return deps.db.transaction().execute(async (trx) => {
        // A move that changes what clients send or read is recorded as the breaking change it is.
        const replaced = await getAlias(trx, model.id, 'production');
        let signatureChange: { from: number; inputs: string[]; outputs: string[] } | undefined;
        if (replaced && replaced.model_version_id !== mv.id) {
          const before = await trx.selectFrom('model_versions').select(['input_signature', 'output_signature']).where('id', '=', replaced.model_version_id).executeTakeFirstOrThrow();
          const inputs = signatureDiff(before.input_signature, mv.input_signature as Array<{ name: string; datatype: string }>);
          const outputs = signatureDiff(before.output_signature, mv.output_signature as Array<{ name: string; datatype: string }>);
          if (inputs.length || outputs.length) signatureChange = { from: replaced.version, inputs, outputs };
        }
        const reason = signatureChange ? `${input.reason ?? ''}${input.reason ? '; ' : ''}breaking signature change from v${signatureChange.from}: ${[...signatureChange.inputs, ...signatureChange.outputs].join(', ')}` : (input.reason ?? null);
        await setAlias(trx, model.id, 'production', mv.id, {
          kind: input.kind ?? 'promote',
          movedBy: info.workflowExecution?.workflowId ?? null,
          reason,
          details: { ...input.details, workflowType: info.workflowType, runId: info.workflowExecution?.runId, ...(signatureChange ? { signatureChange } : {}) },
        });
        // The version it replaces stays loaded for an instant rollback, without traffic.
        await trx
          .updateTable('deployments')
          .set({ status: 'standby', weight: 0, updated_at: sql<Date>`now()` as never })
          .where('slot', '=', 'serving')
          .where('model_version_id', '!=', mv.id)
          .where('model_version_id', 'in', trx.selectFrom('model_versions').select('id').where('model_id', '=', model.id))
          .execute();
        await upsertDeployment(trx, { modelVersionId: mv.id, slot: 'serving', endpoint: deps.config.modelServer.url, status: 'production', weight: 100 });
        return signatureChange ? { signatureChange } : {};
      });
    },
  };
}

export type DeploymentActivities = ReturnType<typeof createDeploymentActivities>;
