import type { Kysely } from 'kysely';
import type { ArtifactStore } from '../../infra/artifacts';
import type { Database } from '../../infra/db/schema';
import { getAlias, getModelByName } from '../../infra/db/repositories';
import { withDuckDb } from '../data/duck';
import { loadTable, type PreparedData } from '../data/prepare';
import { localArtifact, readVerified } from '../data/sources';
import { auc, multiclassMetrics, quantile, rmse } from '../ml/metrics';
import { createSession, feedsFor, scoreTable, signatureOf, signatureProblems } from './scoring';
import type { EvaluationFigures, SliceMetrics } from './evaluate';
import type { ArtifactRef } from './train';

/**
 * The validate-model step (TFX Evaluator + InfraValidator): quality gates, the production
 * champion scored on the same test split, and infra checks — the ONNX loads, its signature is
 * the serving contract, and batch-1 latency is within budget.
 */

/** See the baseline gate. */
const AUC_PRECISION = 1e-4;
/** The regression counterpart: ONNX predictions are float32, ridge's and the champion's comparison float64. */
const RMSE_PRECISION = 1e-6;

export interface Gates {
  minAuc: number;
  maxRegression: number;
  minSliceAuc?: number;
  /** Regression gates (see the training spec). */
  maxRmse?: number;
  minR2?: number;
  maxSliceRmse?: number;
  /** Multiclass gates (see the training spec). */
  multiclassMetric?: 'macroF1' | 'logLoss';
  minMacroF1?: number;
  maxLogLoss?: number;
  minSliceRows: number;
  latencyBudgetMs: number;
  maxParityDiff: number;
  /** How far below the logistic baseline's AUC on the same split a candidate may be (default 0). */
  maxBaselineLoss: number;
  /** A production champion that cannot be scored on this split: reject the candidate (default), or accept without the comparison. */
  onIncomparableChampion: 'reject' | 'accept';
  /** Absent in runs started before it existed: no declared change. */
  allowSignatureChange?: boolean;
}

export interface ModelValidation {
  accepted: boolean;
  reasons: string[];
  checks: Array<{ gate: string; ok: boolean; value: number | string | null; limit: number | string | null }>;
  champion?: { version: number; modelVersionId: string } & ({ auc: number } | { rmse: number } | { macroF1: number; logLoss: number });
  /** Set when the candidate's inputs or outputs differ from production's (and the spec declared it, or it was rejected). */
  signatureChange?: { from: number; inputs: string[]; outputs: string[]; declared: boolean };
  infra: { loads: boolean; signatureProblems: string[]; latencyP50Ms: number; latencyP99Ms: number };
}

export interface ValidateModelInput {
  modelName: string;
  model: ArtifactRef;
  data: Pick<PreparedData, 'test' | 'features' | 'task' | 'classes'>;
  evaluation: EvaluationFigures;
  gates: Gates;
}

/**
 * The slice gate (with `minSliceAuc`): every slice with `minSliceRows` test rows and both classes
 * is gated; smaller ones are reported only. A gate that could judge no slice has no evidence,
 * and fails.
 */
export function sliceChecks(slices: Array<Pick<SliceMetrics, 'slice' | 'rows' | 'auc'>>, gates: Pick<Gates, 'minSliceAuc' | 'minSliceRows'>): ModelValidation['checks'] {
  const min = gates.minSliceAuc;
  if (min === undefined) return [];
  const gated = slices.filter((s): s is typeof s & { auc: number } => s.rows >= gates.minSliceRows && s.auc !== null);
  if (!gated.length) return [{ gate: 'slice-auc', ok: false, value: `no slice with ${gates.minSliceRows} test rows and both classes (of ${slices.length})`, limit: min }];
  return gated.map((s) => ({ gate: `slice-auc ${s.slice}`, ok: s.auc >= min, value: s.auc, limit: min }));
}

type Check = (gate: string, ok: boolean, value: number | string | null, limit: number | string | null) => void;

/** A regression's default floor on R²: a model must beat predicting the mean. */
export const DEFAULT_MIN_R2 = 0;

/**
 * Regression gates on RMSE: R² at least minR2, RMSE at most maxRmse, no worse than ridge on the
 * same split (by the share maxBaselineLoss), and each slice with minSliceRows rows within
 * maxSliceRmse. A figure that is not finite fails its gate.
 */
export function regressionChecks(evaluation: Extract<EvaluationFigures, { task: 'regression' }>, gates: Gates, check: Check): void {
  const m = evaluation.metrics;
  const minR2 = gates.minR2 ?? DEFAULT_MIN_R2;
  check('min-r2', Number.isFinite(m.r2) && m.r2 >= minR2, Number.isFinite(m.r2) ? m.r2 : 'not finite (a constant test target?)', minR2);
  if (gates.maxRmse !== undefined) check('max-rmse', Number.isFinite(m.rmse) && m.rmse <= gates.maxRmse, m.rmse, gates.maxRmse);
  const base = evaluation.baseline.rmse;
  const limit = base * (1 + gates.maxBaselineLoss);
  check(`vs-baseline ${evaluation.baseline.trainer}`, Number.isFinite(m.rmse) && Number.isFinite(limit) && m.rmse <= limit * (1 + RMSE_PRECISION), m.rmse, limit);
  const max = gates.maxSliceRmse;
  if (max === undefined) return;
  const gated = evaluation.slices.filter((s) => s.rows >= gates.minSliceRows);
  if (!gated.length) return check('slice-rmse', false, `no slice with ${gates.minSliceRows} test rows (of ${evaluation.slices.length})`, max);
  for (const s of gated) check(`slice-rmse ${s.slice}`, Number.isFinite(s.rmse) && s.rmse <= max, s.rmse, max);
}

/** A multiclass task's comparisons judge macro-F1 unless the spec names log loss. */
const multiclassMetricOf = (gates: Pick<Gates, 'multiclassMetric'>) => gates.multiclassMetric ?? 'macroF1';

/**
 * Whether `candidate` is no worse than `reference` on a multiclass task's metric: macro-F1 may
 * drop by `allowed` (absolute, as AUC), log loss may exceed by the share `allowed` (as RMSE).
 */
function noWorse(metric: 'macroF1' | 'logLoss', candidate: number, reference: number, allowed: number): { ok: boolean; value: number; limit: number } {
  if (metric === 'macroF1') {
    const limit = reference - allowed;
    return { ok: Number.isFinite(candidate) && Number.isFinite(limit) && candidate >= limit - AUC_PRECISION, value: candidate, limit };
  }
  const limit = reference * (1 + allowed);
  return { ok: Number.isFinite(candidate) && Number.isFinite(limit) && candidate <= limit * (1 + RMSE_PRECISION), value: candidate, limit };
}

/**
 * Multiclass gates: log loss below the class prior's (a model must beat predicting the training
 * shares), macro-F1 at least minMacroF1 and log loss at most maxLogLoss when set, and no worse
 * than multinomial logistic regression on the same split by the chosen metric.
 */
export function multiclassChecks(evaluation: Extract<EvaluationFigures, { task: 'multiclass' }>, gates: Gates, check: Check): void {
  const m = evaluation.metrics;
  check('vs-prior log-loss', Number.isFinite(m.logLoss) && m.logLoss < evaluation.prior.logLoss, m.logLoss, evaluation.prior.logLoss);
  if (gates.minMacroF1 !== undefined) check('min-macro-f1', Number.isFinite(m.macroF1) && m.macroF1 >= gates.minMacroF1, m.macroF1, gates.minMacroF1);
  if (gates.maxLogLoss !== undefined) check('max-log-loss', Number.isFinite(m.logLoss) && m.logLoss <= gates.maxLogLoss, m.logLoss, gates.maxLogLoss);
  const metric = multiclassMetricOf(gates);
  const r = noWorse(metric, m[metric], evaluation.baseline[metric], gates.maxBaselineLoss);
  check(`vs-baseline ${evaluation.baseline.trainer} ${metric}`, r.ok, r.value, r.limit);
}

function binaryChecks(evaluation: Extract<EvaluationFigures, { task?: undefined }>, gates: Gates, check: Check): void {
  const candidateAuc = evaluation.metrics.auc;
  check('min-auc', candidateAuc >= gates.minAuc, candidateAuc, gates.minAuc);
  // The trainer-independent yardstick: a candidate that loses to a logistic regression fitted on
  // the same split has learned nothing worth serving. ONNX scores are float32, the baseline's
  // float64: AUC differences below AUC_PRECISION are rounding, not evidence.
  if (evaluation.baseline) {
    const loss = gates.maxBaselineLoss;
    check(`vs-baseline ${evaluation.baseline.trainer}`, Number.isFinite(loss) && candidateAuc >= evaluation.baseline.auc - loss - AUC_PRECISION, candidateAuc - evaluation.baseline.auc, -loss);
  } else {
    check('vs-baseline', false, 'no baseline figures', 'a baseline');
  }
  for (const c of sliceChecks(evaluation.slices, gates)) check(c.gate, c.ok, c.value, c.limit);
}

export async function validateModel(deps: { db: Kysely<Database>; artifacts: ArtifactStore }, input: ValidateModelInput): Promise<ModelValidation> {
  const { gates, evaluation } = input;
  const features = input.data.features;
  const checks: ModelValidation['checks'] = [];
  const check = (gate: string, ok: boolean, value: number | string | null, limit: number | string | null) => checks.push({ gate, ok, value, limit });

  const testPath = await localArtifact(deps.artifacts, input.data.test, '.parquet');
  const task = input.data.task ?? 'binary';
  const classes = input.data.classes;
  const test = await withDuckDb((c) => loadTable(testPath, features, c, { task, classes }));

  // Infra validation: the bytes that will be served, loaded the way the server loads them.
  let loads = true;
  let problems: string[] = [];
  const latencies: number[] = [];
  try {
    const session = await createSession(await readVerified(deps.artifacts, input.model));
    problems = signatureProblems(session, features, task, classes);
    if (!problems.length) {
      for (let i = 0; i < 220; i++) {
        const row = i % Math.max(1, test.rows);
        const t = performance.now();
        await session.run(feedsFor(test, features, row, row + 1));
        if (i >= 20) latencies.push(performance.now() - t);
      }
    }
    await session.release();
  } catch (err) {
    loads = false;
    problems = [`the model does not load in onnxruntime: ${err instanceof Error ? err.message : String(err)}`];
  }
  const infra = { loads, signatureProblems: problems, latencyP50Ms: quantile(latencies, 0.5), latencyP99Ms: quantile(latencies, 0.99) };
  check('onnx-loads', loads, loads ? 'yes' : 'no', 'yes');
  check('serving-signature', problems.length === 0, problems.join('; ') || 'matches', 'matches');
  if (latencies.length) check('latency-p50-ms', infra.latencyP50Ms <= gates.latencyBudgetMs, infra.latencyP50Ms, gates.latencyBudgetMs);

  // Quality gates.
  if (evaluation.task === 'regression') regressionChecks(evaluation, gates, check);
  else if (evaluation.task === 'multiclass') multiclassChecks(evaluation, gates, check);
  else binaryChecks(evaluation, gates, check);
  // Without the trainer's own scores nothing shows that the exported graph computes its model.
  // A regression's float32 rounding grows with its predictions: the limit scales with them.
  if (evaluation.parity) {
    const limit = gates.maxParityDiff * (evaluation.parity.scale ?? 1);
    // Not finite (NaN scores, null through JSON) is no evidence of parity.
    const diff = evaluation.parity.maxAbsDiff;
    check('onnx-parity', Number.isFinite(diff) && diff <= limit, diff, limit);
  } else check('onnx-parity', false, 'no trainer scores on the test split', gates.maxParityDiff);

  // The champion: the production version, scored on the same test split.
  let champion: ModelValidation['champion'];
  const model = await getModelByName(deps.db, input.modelName);
  const prod = model ? await getAlias(deps.db, model.id, 'production') : undefined;
  let signatureChange: ModelValidation['signatureChange'];
  if (prod) {
    // The serving contract: production's clients send production's inputs and read its outputs.
    const prodRow = await deps.db.selectFrom('model_versions').select(['input_signature', 'output_signature']).where('id', '=', prod.model_version_id).executeTakeFirstOrThrow();
    const candidate = signatureOf(features, task, classes);
    const inputs = signatureDiff(prodRow.input_signature, candidate.inputs);
    const outputs = signatureDiff(prodRow.output_signature, candidate.outputs);
    if (inputs.length || outputs.length) {
      const declared = gates.allowSignatureChange === true;
      signatureChange = { from: prod.version, inputs, outputs, declared };
      const what = [...inputs.map((d) => `input ${d}`), ...outputs.map((d) => `output ${d}`)].join(', ');
      check(`signature vs v${prod.version}`, declared, `${declared ? 'declared change' : 'changed'}: ${what}`, declared ? 'gates.allowSignatureChange' : 'same inputs and outputs (or gates.allowSignatureChange: true)');
    }
  }
  // Another class list (signatureDiff's `<output> classes …→…`): the champion's probability columns are of other classes.
  const otherClasses = signatureChange?.outputs.some((o) => o.includes(' classes ')) ?? false;
  if (prod && signatureChange?.declared && (signatureChange.inputs.length || otherClasses)) {
    // A declared change of inputs or classes: the champion cannot read this split's features, or its probabilities mean other classes; there is nothing to compare.
    check(`champion v${prod.version} comparable`, true, 'not comparable: declared signature change', 'comparable');
  } else if (prod) {
    const artifact = prod.onnx_artifact_id
      ? await deps.db.selectFrom('artifacts').selectAll().where('id', '=', prod.onnx_artifact_id).executeTakeFirst()
      : undefined;
    const incomparable = (why: string) => check(`champion v${prod.version} comparable`, gates.onIncomparableChampion === 'accept', `not comparable: ${why}`, 'comparable');
    if (!artifact) incomparable('its ONNX artifact is not recorded');
    // Of the same width, another class list would still score: each column read as the wrong class.
    else if (otherClasses) incomparable('its probabilities are of other classes');
    else {
      try {
        const session = await createSession(await readVerified(deps.artifacts, artifact));
        const scores = await scoreTable(session, test, features).finally(() => session.release());
        const vs = `no-regression vs v${prod.version}`;
        if (evaluation.task === 'multiclass') {
          // The champion's probabilities over this split's classes: other classes make it incomparable (the scoring throws on the width).
          const cm = multiclassMetrics(scores, test.label, classes!.length);
          champion = { version: prod.version, modelVersionId: prod.model_version_id, macroF1: cm.macroF1, logLoss: cm.logLoss };
          const metric = multiclassMetricOf(gates);
          const r = noWorse(metric, evaluation.metrics[metric], cm[metric], gates.maxRegression);
          check(`${vs} ${metric}`, r.ok, r.value, r.limit);
        } else if (evaluation.task === 'regression') {
          // maxRegression is the share by which the candidate's RMSE may exceed the champion's.
          const championRmse = rmse(scores, test.label);
          champion = { version: prod.version, modelVersionId: prod.model_version_id, rmse: championRmse };
          const limit = championRmse * (1 + gates.maxRegression);
          check(vs, Number.isFinite(championRmse) && evaluation.metrics.rmse <= limit * (1 + RMSE_PRECISION), evaluation.metrics.rmse, limit);
        } else {
          const championAuc = auc(scores, test.label);
          champion = { version: prod.version, modelVersionId: prod.model_version_id, auc: championAuc };
          const candidateAuc = evaluation.metrics.auc;
          check(vs, candidateAuc >= championAuc - gates.maxRegression, candidateAuc - championAuc, -gates.maxRegression);
        }
      } catch (err) {
        // Without the comparison there is no evidence the candidate is not worse: fail closed
        // unless the spec accepts it (e.g. a deliberate change of features).
        incomparable(err instanceof Error ? err.message : String(err));
      }
    }
  }
  const reasons = checks.filter((c) => !c.ok).map((c) => `${c.gate}: ${typeof c.value === 'number' ? c.value.toFixed(4) : c.value} (limit ${typeof c.limit === 'number' ? c.limit : c.limit})`);
  return { accepted: reasons.length === 0, reasons, checks, champion, infra, ...(signatureChange ? { signatureChange } : {}) };
}

/**
 * What differs between two signatures, as `-name FP32`, `+name BYTES`, `name FP32→BYTES`, and
 * `name classes [a,b]→[a,c]`: a multiclass output's columns mean its classes, so a client
 * reading them by position breaks when they change.
 */
export function signatureDiff(before: unknown, after: Array<{ name: string; datatype: string; classes?: unknown }>): string[] {
  const describe = (s: { datatype?: unknown; classes?: unknown }) => ({ type: String(s.datatype), classes: s.classes === undefined ? undefined : JSON.stringify(s.classes) });
  const was = new Map((Array.isArray(before) ? before : []).map((s: { name?: unknown; datatype?: unknown; classes?: unknown }) => [String(s.name), describe(s)]));
  const now = new Map(after.map((s) => [s.name, describe(s)]));
  const out: string[] = [];
  for (const [name, d] of was) if (!now.has(name)) out.push(`-${name} ${d.type}`);
  for (const [name, d] of now) {
    const old = was.get(name);
    if (!old) out.push(`+${name} ${d.type}`);
    else if (old.type !== d.type) out.push(`${name} ${old.type}→${d.type}`);
    else if (old.classes !== d.classes) out.push(`${name} classes ${old.classes ?? 'none'}→${d.classes ?? 'none'}`);
  }
  return out;
}
