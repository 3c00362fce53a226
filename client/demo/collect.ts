import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { auc, logLoss } from '../../activities/ml/metrics';
import type { Database } from '../../infra/db/schema';
import { monthLabel, type MonthSample } from './data';
import type { ReportSummary } from './figures';
import type { ServedBatch } from './replay';
import type { DemoData, MonthFigures, OnlineMetrics, RetrainTrigger, ServingBucket, VersionInfo } from './report';
import type { TimelineEvent } from './timeline';

/**
 * Gathers the report's figures: online metrics from the prediction log (the replayed rows and
 * the labels that came back), drift from monitoring's own reports, versions from the registry,
 * serving from the answers the replay got.
 */

export function requestPrefix(month: string): string {
  return monthLabel(month).toLowerCase();
}

export function onlineMetrics(rows: Array<{ p: number; y: number }>): OnlineMetrics | null {
  if (!rows.length) return null;
  const probs = Float64Array.from(rows, (r) => r.p);
  const labels = Uint8Array.from(rows, (r) => (r.y > 0 ? 1 : 0));
  const positives = labels.reduce((a, b) => a + b, 0);
  const positiveRate = positives / rows.length;
  const meanPrediction = probs.reduce((a, b) => a + b, 0) / rows.length;
  return {
    labeledRows: rows.length,
    auc: positives > 0 && positives < rows.length ? auc(probs, labels) : null,
    logLoss: logLoss(probs, labels),
    positiveRate,
    meanPrediction,
    calibrationGap: Math.abs(positiveRate - meanPrediction),
  };
}

const labelledRow = z.object({ p: z.coerce.number(), y: z.coerce.number() });

async function labelledRows(db: Kysely<Database>, month: string): Promise<Array<{ p: number; y: number }>> {
  // Only traffic the application saw (stable or canary), not the promotion's pinned test calls.
  const rows = await sql<{ p: unknown; y: unknown }>`
    select (outputs->>'probability')::float8 as p, (label #>> '{}')::float8 as y
    from prediction_log
    where request_id like ${`${requestPrefix(month)}-%`} and label is not null and outputs->>'role' in ('stable', 'canary')`.execute(db);
  return rows.rows.map((r) => labelledRow.parse(r)).filter((r) => Number.isFinite(r.p) && Number.isFinite(r.y));
}

const specSchema = z.looseObject({
  dataset: z.union([z.object({ flights: z.object({ from: z.string(), to: z.string() }) }), z.object({ uris: z.array(z.string()) }), z.object({ bundled: z.string() })]).optional(),
  sampleRows: z.number().optional(),
});
const metricsSchema = z.looseObject({ auc: z.number().nullable().optional(), logLoss: z.number().nullable().optional() });

function describeTraining(spec: unknown): string {
  const s = specSchema.safeParse(spec);
  if (!s.success || !s.data.dataset) return '?';
  const d = s.data.dataset;
  const what =
    'flights' in d ? (d.flights.from === d.flights.to ? `flights ${d.flights.from}` : `flights ${d.flights.from}…${d.flights.to}`) : 'bundled' in d ? d.bundled : d.uris.map((u) => u.split('/').pop() ?? u).join(' + ');
  return s.data.sampleRows ? `${what} (${s.data.sampleRows.toLocaleString('en-US')} rows sampled)` : what;
}

export async function loadVersions(db: Kysely<Database>, model: string, served: ServedBatch[], productionSince: Map<number, number>): Promise<VersionInfo[]> {
  const rows = await db
    .selectFrom('model_versions')
    .innerJoin('models', 'models.id', 'model_versions.model_id')
    .leftJoin('pipeline_runs', 'pipeline_runs.id', 'model_versions.training_run_id')
    .select(['model_versions.version', 'model_versions.status', 'model_versions.metrics', 'model_versions.created_at', 'pipeline_runs.spec'])
    .where('models.name', '=', model)
    .orderBy('model_versions.version')
    .execute();
  return rows.map((r) => {
    const m = metricsSchema.safeParse(r.metrics);
    const first = served.find((b) => b.ok && b.version === r.version);
    return {
      version: r.version,
      status: r.status,
      auc: m.success ? (m.data.auc ?? null) : null,
      logLoss: m.success ? (m.data.logLoss ?? null) : null,
      trainedOn: describeTraining(r.spec),
      createdAt: new Date(r.created_at).getTime(),
      firstServedAt: first?.at ?? null,
      promotedAt: productionSince.get(r.version) ?? null,
    };
  });
}

export function servingBuckets(served: ServedBatch[], startedAt: number, months: Array<{ month: string; start: number; end: number }>): { bucketSeconds: number; buckets: ServingBucket[] } {
  const ok = served.filter((b) => b.ok && b.version !== null);
  if (!ok.length) return { bucketSeconds: 1, buckets: [] };
  const span = (ok[ok.length - 1]!.at - ok[0]!.at) / 1000;
  const bucketSeconds = Math.max(1, Math.round(span / 150));
  const byKey = new Map<number, ServingBucket>();
  for (const b of ok) {
    const t = Math.floor((b.at - startedAt) / 1000 / bucketSeconds) * bucketSeconds;
    let bucket = byKey.get(t);
    if (!bucket) {
      bucket = { t, month: months.find((m) => b.at >= m.start && b.at < m.end)?.month ?? b.month, counts: {} };
      byKey.set(t, bucket);
    }
    bucket.counts[String(b.version)] = (bucket.counts[String(b.version)] ?? 0) + b.rows;
  }
  return { bucketSeconds, buckets: [...byKey.values()].sort((a, b) => a.t - b.t) };
}

/** Drift figures of the reports written during the month whose window was large enough to be judged for drift. */
export function monthDrift(reports: ReportSummary[], start: number, end: number, minRows: number): MonthFigures['drift'] {
  const inside = reports.filter((r) => r.at >= start && r.at < end && r.level !== 'insufficient-data' && r.rows >= minRows);
  let maxFeaturePsi: number | null = null;
  let maxFeature: string | null = null;
  let predictionPsi: number | null = null;
  for (const r of inside) {
    if (r.maxPsi !== null && (maxFeaturePsi === null || r.maxPsi > maxFeaturePsi)) {
      maxFeaturePsi = r.maxPsi;
      maxFeature = r.maxPsiFeature;
    }
    if (r.predictionPsi !== null && (predictionPsi === null || r.predictionPsi > predictionPsi)) predictionPsi = r.predictionPsi;
  }
  return { maxFeaturePsi, maxFeature, predictionPsi, reports: inside.length, breaches: inside.filter((r) => r.breach).length };
}

/**
 * Retrains asked for, with who asked: the lifecycle's accepted triggers, whether they started a
 * training (`trigger`) or joined the follow-up of one already running (`coalesced`).
 */
export function retrainsFrom(events: TimelineEvent[]): RetrainTrigger[] {
  return events.filter((e) => e.kind === 'trigger' || e.kind === 'coalesced').map((e) => ({ at: e.at, t: e.t, source: e.source ?? 'unknown', detail: e.detail }));
}

export async function collectDemoData(input: {
  db: Kysely<Database>;
  model: string;
  startedAt: number;
  uiUrl: string;
  options: Record<string, unknown>;
  thresholds: Record<string, unknown>;
  samples: MonthSample[];
  windows: Map<string, { start: number; end: number }>;
  served: ServedBatch[];
  reports: ReportSummary[];
  events: TimelineEvent[];
  productionSince: Map<number, number>;
  minRows: number;
  notes: string[];
}): Promise<DemoData> {
  const months: MonthFigures[] = [];
  const windows = input.samples.map((s) => ({ month: s.month, ...(input.windows.get(s.month) ?? { start: input.startedAt, end: input.startedAt }) }));
  for (const s of input.samples) {
    const w = input.windows.get(s.month) ?? { start: input.startedAt, end: input.startedAt };
    const served = input.served.filter((b) => b.ok && b.month === s.month);
    const versions: Record<string, number> = {};
    for (const b of served) versions[String(b.version)] = (versions[String(b.version)] ?? 0) + b.rows;
    months.push({
      month: s.month,
      label: monthLabel(s.month),
      sampledRows: s.rows.length,
      servedRows: served.reduce((a, b) => a + b.rows, 0),
      fullRows: s.fullRows,
      fullPositiveRate: s.fullPositiveRate,
      start: w.start,
      end: w.end,
      online: onlineMetrics(await labelledRows(input.db, s.month)),
      drift: monthDrift(input.reports, w.start, w.end, input.minRows),
      versions,
    });
  }
  return {
    model: input.model,
    generatedAt: new Date().toISOString(),
    startedAt: input.startedAt,
    finishedAt: Date.now(),
    uiUrl: input.uiUrl,
    options: input.options,
    thresholds: input.thresholds,
    months,
    versions: await loadVersions(input.db, input.model, input.served, input.productionSince),
    serving: servingBuckets(input.served, input.startedAt, windows),
    reports: input.reports,
    retrains: retrainsFrom(input.events),
    events: input.events,
    notes: input.notes,
  };
}
