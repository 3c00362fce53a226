import { z } from 'zod';

/**
 * What the demo reads back from the platform — lifecycle status (query `status` on
 * `model/<name>`) and monitoring reports (rows of monitoring_reports) — checked with zod, loosely:
 * only the fields the timeline and the report use, so a richer payload still parses.
 */

const finite = z.number().refine(Number.isFinite);

export const decisionSchema = z.looseObject({
  at: z.string(),
  kind: z.string(),
  detail: z.string().default(''),
  source: z.string().optional(),
  workflowId: z.string().optional(),
  version: z.number().optional(),
  figures: z.record(z.string(), z.unknown()).optional(),
});
export type Decision = z.output<typeof decisionSchema>;

export const lifecycleStatusSchema = z.looseObject({
  phase: z.string(),
  production: z.number().nullable().default(null),
  running: z.looseObject({ kind: z.string(), workflowId: z.string() }).optional(),
  pending: z.array(z.unknown()).default([]),
  decisions: z.array(decisionSchema).default([]),
});
export type LifecycleView = z.output<typeof lifecycleStatusSchema>;

export const reportSchema = z.looseObject({
  version: z.number().optional(),
  windowStart: z.string().optional(),
  windowEnd: z.string().optional(),
  rows: z.number().default(0),
  labeledRows: z.number().default(0),
  level: z.string().default('ok'),
  breach: z.boolean().default(false),
  reasons: z.array(z.string()).default([]),
  features: z.record(z.string(), z.looseObject({ psi: finite.nullish(), js: finite.nullish(), ks: finite.nullish() })).default({}),
  prediction: z.looseObject({ psi: finite.nullish(), mean: finite.optional(), baselineMean: finite.optional() }).optional(),
  performance: z
    .looseObject({
      auc: finite.nullable().optional(),
      logLoss: finite.optional(),
      positiveRate: finite.optional(),
      meanPrediction: finite.optional(),
      offlineAuc: finite.nullable().optional(),
      offlineLogLoss: finite.nullable().optional(),
    })
    .optional(),
});

export interface ReportSummary {
  /** ms since epoch the report was written. */
  at: number;
  version: number | null;
  level: string;
  breach: boolean;
  rows: number;
  labeledRows: number;
  maxPsi: number | null;
  maxPsiFeature: string | null;
  predictionPsi: number | null;
  auc: number | null;
  offlineAuc: number | null;
  logLoss: number | null;
  offlineLogLoss: number | null;
  calibrationGap: number | null;
  reasons: string[];
}

export function summarizeReport(figures: unknown, at: number, versionHint: number | null): ReportSummary | null {
  const r = reportSchema.safeParse(figures);
  if (!r.success) return null;
  const f = r.data;
  let maxPsi: number | null = null;
  let maxPsiFeature: string | null = null;
  for (const [name, x] of Object.entries(f.features)) {
    if (x.psi !== undefined && x.psi !== null && (maxPsi === null || x.psi > maxPsi)) {
      maxPsi = x.psi;
      maxPsiFeature = name;
    }
  }
  const p = f.performance;
  return {
    at,
    version: f.version ?? versionHint,
    level: f.level,
    breach: f.breach,
    rows: f.rows,
    labeledRows: f.labeledRows,
    maxPsi,
    maxPsiFeature,
    predictionPsi: f.prediction?.psi ?? null,
    auc: p?.auc ?? null,
    offlineAuc: p?.offlineAuc ?? null,
    logLoss: p?.logLoss ?? null,
    offlineLogLoss: p?.offlineLogLoss ?? null,
    calibrationGap: p?.positiveRate !== undefined && p.meanPrediction !== undefined ? Math.abs(p.positiveRate - p.meanPrediction) : null,
    reasons: f.reasons,
  };
}

export const fmt = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));
