import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { sourcePriorities } from './priority';
import { TRIGGER_SOURCES } from './trigger-sources';
import {
  LATEST_REPORT_QUERY,
  NEW_DATA_SIGNAL,
  PAUSE_SIGNAL,
  RESUME_SIGNAL,
  RETRAIN_SIGNAL,
  RETRAIN_UPDATE,
  SET_POLICY_SIGNAL,
  SET_THRESHOLDS_SIGNAL,
  STATUS_QUERY,
} from './names';
import { MODEL_NAME, datasetUri } from './training-spec';

/**
 * The contract of the closed loop, shared by the lifecycle and monitoring workflows, the
 * triggers (CLI, schedule, new-data watcher, webhook) and the clients: signal payloads,
 * policy and thresholds as zod schemas, and the signal/query definitions. Workflow-safe.
 */

export const modelName = z.string().regex(MODEL_NAME, 'must be 1–63 lowercase letters, digits and dashes, starting with a letter or digit (e.g. flights-delay)');

/** Small JSON figures travel with a trigger (PSI, AUC…); never data. */
const figures = z.record(z.string().max(128), z.unknown()).refine((f) => JSON.stringify(f).length <= 16 * 1024, 'figures must be at most 16 KiB of JSON');

export { TRIGGER_SOURCES } from './trigger-sources';

export const retrainRequest = z
  .object({
    reason: z.string().min(1).max(500).default('retrain requested'),
    source: z.enum(TRIGGER_SOURCES).default('api'),
    /** Triggers with the same key within the policy's dedupe window are dropped. */
    dedupeKey: z.string().min(1).max(200).optional(),
    figures: figures.optional(),
  })
  .strict();
export type RetrainRequest = z.input<typeof retrainRequest>;
export type RetrainTrigger = z.output<typeof retrainRequest>;

export const newDataRequest = z
  .object({
    uris: z.array(datasetUri).min(1, 'needs at least one URI').max(100),
    dedupeKey: z.string().min(1).max(200).optional(),
    source: z.enum(TRIGGER_SOURCES).default('new-data'),
  })
  .strict();
export type NewDataRequest = z.input<typeof newDataRequest>;

/** Monitoring thresholds; per model, with defaults (PSI 0.1 warn / 0.2 act). */
export const monitoringThresholds = z
  .object({
    psiWarn: z.number().min(0).default(0.1),
    psiAct: z.number().min(0).default(0.2),
    /** Jensen–Shannon distance (base 2) at which a feature counts as drifted. */
    jsAct: z.number().min(0).max(1).default(0.2),
    /** KS statistic (not the p-value: with thousands of rows every shift is "significant"). */
    ksAct: z.number().min(0).max(1).default(0.2),
    predictionPsiAct: z.number().min(0).default(0.2),
    /** Missing-value fraction above the training baseline's. */
    maxMissingIncrease: z.number().min(0).max(1).default(0.05),
    /** Fraction of rows with a category the model never saw in training. */
    maxUnseenFraction: z.number().min(0).max(1).default(0.05),
    /** AUC drop from the version's offline test AUC on labelled predictions. */
    maxAucDrop: z.number().min(0).max(1).default(0.05),
    /** Log-loss rise from the version's offline test log loss. */
    maxLogLossIncrease: z.number().min(0).default(0.05),
    /** |observed positive rate − mean predicted probability| on labelled predictions. */
    maxCalibrationGap: z.number().min(0).max(1).default(0.05),
    /** A regression's RMSE on labelled predictions above its offline test RMSE, relative: 0.1 is 10% worse. */
    maxRmseIncrease: z.number().min(0).default(0.1),
    /** A regression's |mean label − mean prediction| on labelled predictions, relative to its offline test RMSE. */
    maxBiasRatio: z.number().min(0).default(0.5),
    /** A multiclass model's accuracy drop from its offline test accuracy on labelled predictions (absolute, as maxAucDrop). */
    maxAccuracyDrop: z.number().min(0).max(1).default(0.05),
    /** Fewer rows in a window than this: no verdict, the window grows. */
    minRows: z.number().int().min(1).max(10_000_000).default(500),
    minLabeledRows: z.number().int().min(1).max(10_000_000).default(200),
  })
  .strict()
  .refine((t) => t.psiWarn <= t.psiAct, { message: 'psiWarn must not exceed psiAct', path: ['psiWarn'] });
export type MonitoringThresholds = z.output<typeof monitoringThresholds>;
export type MonitoringThresholdsInput = z.input<typeof monitoringThresholds>;

export const lifecyclePolicy = z
  .object({
    /** No training starts sooner than this after the previous one ended. */
    cooldownSeconds: z.number().min(0).max(30 * 24 * 3600).default(3600),
    /** Trainings per UTC day; triggers past it wait for the next day. */
    dailyBudget: z.number().int().min(0).max(1000).default(4),
    /** Seconds a dedupe key is remembered. */
    dedupeWindowSeconds: z.number().min(0).max(90 * 24 * 3600).default(24 * 3600),
    /** A `newData` signal also asks for a retrain. */
    retrainOnNewData: z.boolean().default(true),
    /** The newest this many data URIs (from `newData`) make the training set; none yet: the template's dataset. */
    dataWindow: z.number().int().min(1).max(64).default(3),
    /** continuousTraining spec without `model` (and without `dataset` when data comes from `newData`). */
    training: z.record(z.string(), z.unknown()).default({ preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } } }),
    /**
     * The priority level (1 first … 5 last) of a training by the source of its trigger; unset
     * sources keep the defaults (monitoring, schedule, webhook, new-data 2; cli, api, demo 3).
     */
    priorities: sourcePriorities.default({}),
    /** Promote accepted candidates (`promotion` child); false stops at `candidate`. */
    promote: z.boolean().default(true),
    /** promotion input without model/version (strategy, canarySteps, bakeSeconds, approval, …). */
    promotion: z.record(z.string(), z.unknown()).default({ strategy: 'canary' }),
    monitoring: z
      .object({
        enabled: z.boolean().default(true),
        periodSeconds: z.number().min(1).max(7 * 24 * 3600).default(3600),
        thresholds: monitoringThresholds.default(monitoringThresholds.parse({})),
        /** Checks per monitoring run before it continues as new (unset: the monitoring default); read when monitoring starts. */
        checksPerRun: z.number().int().min(1).max(10_000).optional(),
      })
      .strict()
      .default({ enabled: true, periodSeconds: 3600, thresholds: monitoringThresholds.parse({}) }),
  })
  .strict();
export type LifecyclePolicy = z.output<typeof lifecyclePolicy>;
export type LifecyclePolicyInput = z.input<typeof lifecyclePolicy>;

/** A URI that stands in for data still to come by `newData`, when a template without a dataset is checked. */
export const STAND_IN_DATA = ['s3://policy-check/stand-in.parquet'];

/**
 * The continuousTraining input a retrain runs: the policy's template, the model, and the newest
 * `dataWindow` data URIs (else the template's dataset). Unchecked: parse it with `trainingSpec`.
 */
export function trainingSpecInput(model: string, policy: LifecyclePolicy, dataUris: string[]): Record<string, unknown> {
  const dataset = dataUris.length ? { uris: dataUris.slice(-policy.dataWindow) } : policy.training.dataset;
  return { ...policy.training, model, dataset };
}

export interface MonitoringFeatureFigures {
  kind: 'numeric' | 'categorical';
  /** null when it cannot be computed; `notComputed` says why. */
  psi: number | null;
  js: number | null;
  /** Numeric features only. */
  ks?: number;
  ksPValue?: number | null;
  /** Figure name → why it is null (JSON has no NaN: a figure is a number or null with a reason, never a stand-in 0). */
  notComputed?: Record<string, string>;
  missingFraction: number;
  baselineMissingFraction: number;
  /** Categorical features only: rows whose category training never saw. */
  unseenFraction?: number;
}

export interface MonitoringReport {
  reportId: string;
  model: string;
  version: number;
  windowStart: string;
  windowEnd: string;
  rows: number;
  labeledRows: number;
  /** `insufficient-data`: too few rows for a verdict; the window is kept open. */
  level: 'ok' | 'warn' | 'act' | 'insufficient-data';
  breach: boolean;
  reasons: string[];
  features: Record<string, MonitoringFeatureFigures>;
  prediction?: ScorePredictionFigures | ClassPredictionFigures;
  quality: { missingInputs: string[]; unexpectedInputs: string[]; schemaChanged: boolean };
  performance?: BinaryPerformance | RegressionPerformance | MulticlassPerformance;
}

/** Prediction drift of a binary model's probabilities or a regression's predictions, on the test scores' deciles. */
export interface ScorePredictionFigures {
  task?: undefined;
  psi: number | null;
  js: number | null;
  ks: number | null;
  mean: number;
  baselineMean: number;
  notComputed?: Record<string, string>;
}

/**
 * Prediction drift of a multiclass model: the shares of the classes it served (its logged
 * `label`) against those it predicted on its test split. The score-only fields are absent, so
 * code reading `prediction.mean` reads undefined here, never a class share.
 */
export interface ClassPredictionFigures {
  task: 'multiclass';
  psi: number | null;
  js: number | null;
  ks?: undefined;
  mean?: undefined;
  baselineMean?: undefined;
  /** The version's classes: the order of both share vectors. */
  classes: string[] | number[];
  /** Served rows of this version per class, divided by `rows` (all 0 when `rows` is 0). */
  shares: number[];
  /** The test split's predicted-class shares; null without a usable offline histogram. */
  baselineShares: number[] | null;
  /** Served rows of this version whose logged class is one of the classes. */
  rows: number;
  /** Served rows whose logged class is none of them: counted in no share. */
  outsideClasses: number;
  notComputed?: Record<string, string>;
}

/** Online performance of a binary model on its labelled predictions (no `task`: reports before there were kinds). */
export interface BinaryPerformance {
  task?: undefined;
  auc: number | null;
  logLoss: number;
  accuracy: number;
  positiveRate: number;
  meanPrediction: number;
  offlineAuc: number | null;
  offlineLogLoss: number | null;
}

export interface RegressionPerformance {
  task: 'regression';
  rmse: number;
  mae: number;
  /** null when the window's labels are constant (R² undefined). */
  r2: number | null;
  meanPrediction: number;
  meanLabel: number;
  offlineRmse: number | null;
  offlineMae: number | null;
}

/** Online performance of a multiclass model on labelled predictions whose label is one of its classes. */
export interface MulticlassPerformance {
  task: 'multiclass';
  accuracy: number;
  macroF1: number;
  logLoss: number;
  /** The version's figures on its test split (its registry metrics); null when absent. */
  offlineAccuracy: number | null;
  offlineMacroF1: number | null;
  offlineLogLoss: number | null;
  /** Labelled rows left out: a label none of the classes, or logged probabilities that are not one number per class. */
  skippedRows: number;
}

/** What the monitoring activity takes: the window is decided by the workflow, so a retry writes the same report. */
export interface MonitoringCheckInput {
  model: string;
  windowStart: string;
  windowEnd: string;
  /** Labels that arrived in (labelsSince, windowEnd] count for performance. */
  labelsSince: string;
  thresholds: MonitoringThresholds;
}

export const monitoringInput = z
  .object({
    model: modelName,
    periodSeconds: z.number().min(1).max(7 * 24 * 3600).default(3600),
    thresholds: monitoringThresholds.default(monitoringThresholds.parse({})),
    /** Checks per run before continue-as-new (history stays small). */
    checksPerRun: z.number().int().min(1).max(10_000).default(200),
    /** Carried across continue-as-new. */
    state: z
      .object({
        windowStart: z.string().optional(),
        labelsSince: z.string().optional(),
        paused: z.boolean().default(false),
        checks: z.number().int().min(0).default(0),
        breaches: z.number().int().min(0).default(0),
        latest: z.unknown().optional(),
        signalled: z.array(z.string()).max(100).default([]),
      })
      .strict()
      .optional(),
  })
  .strict();
export type MonitoringInput = z.input<typeof monitoringInput>;

export const retrainSignal = defineSignal<[RetrainRequest]>(RETRAIN_SIGNAL);

/** The answer to a retrain Update: what the lifecycle did with the request. */
export type RetrainOutcome =
  /** A training started for it (alone, or with others pending at the same moment). */
  | { outcome: 'started'; workflowId: string }
  /** The dedupe key was seen within the policy's window: dropped. */
  | { outcome: 'duplicate'; dedupeKey: string }
  /** A training runs: this request joins the one follow-up that starts after it. */
  | { outcome: 'coalesced'; runningWorkflowId: string }
  /** Cooldown or the daily budget: it waits until `until` (null: the budget is 0 until raised). */
  | { outcome: 'deferred'; until: string | null; reason: 'cooldown' | 'budget' }
  /** Accepted, but no training could be built (e.g. a bad template in the policy). */
  | { outcome: 'rejected'; reason: string };

export const retrainUpdate = defineUpdate<RetrainOutcome, [RetrainRequest]>(RETRAIN_UPDATE);
export const newDataSignal = defineSignal<[NewDataRequest]>(NEW_DATA_SIGNAL);
export const setPolicySignal = defineSignal<[LifecyclePolicyInput]>(SET_POLICY_SIGNAL);
export const pauseSignal = defineSignal<[{ reason?: string }?]>(PAUSE_SIGNAL);
export const resumeMonitoringSignal = defineSignal<[{ reason?: string }?]>(RESUME_SIGNAL);
export const setThresholdsSignal = defineSignal<[MonitoringThresholdsInput]>(SET_THRESHOLDS_SIGNAL);
export const latestReportQuery = defineQuery<MonitoringReport | null>(LATEST_REPORT_QUERY);

export type LifecycleDecisionKind =
  | 'trigger'
  | 'duplicate-dropped'
  | 'coalesced'
  | 'deferred'
  | 'new-data'
  | 'policy'
  | 'training-started'
  | 'training-finished'
  | 'promotion-started'
  | 'promotion-finished'
  | 'monitoring-started'
  | 'error';

export interface LifecycleDecision {
  at: string;
  kind: LifecycleDecisionKind;
  detail: string;
  source?: string;
  workflowId?: string;
  version?: number;
  figures?: Record<string, unknown>;
}

export type LifecyclePhase = 'idle' | 'training' | 'promoting' | 'cooldown' | 'over-budget';

export interface LifecycleStatus {
  model: string;
  phase: LifecyclePhase;
  policy: LifecyclePolicy;
  production: number | null;
  running?: { kind: 'training' | 'promotion'; workflowId: string; startedAt: string; triggers: RetrainTrigger[] };
  /** Triggers waiting for the next training (all of them start one follow-up, together). */
  pending: RetrainTrigger[];
  dataUris: string[];
  trainingsToday: { day: string; count: number };
  lastTrainingEndedAt?: string;
  /** When a deferred follow-up may start (cooldown or budget). */
  nextEligibleAt?: string;
  decisions: LifecycleDecision[];
  counters: { triggers: number; duplicates: number; coalesced: number; trainings: number; promotions: number };
  /** Runs of this workflow id so far (continue-as-new count + 1). */
  generation: number;
}

export const lifecycleStatusQuery = defineQuery<LifecycleStatus>(STATUS_QUERY);
