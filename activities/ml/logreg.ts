import { serializeModel } from '../../infra/onnx/model';
import { categoryStats, type CategoricalEncoding, type FeatureSpec, type Table } from './dataset';
import { featureMatrix, preprocessingNodes, rawFeatureInputs } from './features';
import { sigmoid } from './metrics';
import { outputOf } from './task-output';
import type { TaskKind } from '../../workflows/contracts/training-spec';

/**
 * L2-regularised logistic regression fitted by Newton's method (exact and deterministic for the
 * few features a tabular model has), or for a regression ridge regression (the same solve with
 * the identity link, exact in one step). Categorical features are target-encoded (smoothed
 * log-odds, or smoothed means for a regression), numeric ones mean-imputed and standardised —
 * all of it inside the exported ONNX graph.
 */
export interface LogregParams {
  l2: number;
  maxIterations: number;
  /** Prior strength (pseudo-rows) for the categorical log-odds encoding. */
  smoothing: number;
}

export const DEFAULT_LOGREG: LogregParams = { l2: 1e-4, maxIterations: 25, smoothing: 20 };

export interface LogregModel {
  kind: 'logreg';
  task: TaskKind;
  params: LogregParams;
  features: FeatureSpec[];
  encodings: CategoricalEncoding[];
  means: number[];
  stds: number[];
  weights: number[];
  bias: number;
  iterations: number;
}

function targetEncoding(feature: string, values: string[], label: ArrayLike<number>, smoothing: number, task: TaskKind): CategoricalEncoding {
  let pos = 0;
  for (let i = 0; i < label.length; i++) pos += label[i]!;
  const prior = pos / label.length;
  const logit = task === 'regression' ? (m: number) => m : (p: number) => Math.log(p / (1 - p));
  const entries = [...categoryStats(values, label).entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return {
    feature,
    keys: entries.map(([k]) => k),
    values: entries.map(([, s]) => Math.fround(logit((s.pos + smoothing * prior) / (s.n + smoothing)))),
    unknown: Math.fround(logit(prior)),
  };
}

/** Solves A x = b for a symmetric positive definite A (Cholesky). */
function solveSpd(a: number[][], b: number[]): number[] {
  const n = b.length;
  const l = a.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      l[i]![j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / l[j]![j]!;
    }
  }
  const y = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i]![k]! * y[k]!;
    y[i] = s / l[i]![i]!;
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k]![i]! * x[k]!;
    x[i] = s / l[i]![i]!;
  }
  return x;
}

/** Standardised design matrix columns, exactly as the graph computes them (float32 steps). */
export function design(cols: Float32Array[], means: number[], stds: number[]): Float32Array[] {
  return cols.map((c, j) => {
    const out = new Float32Array(c.length);
    const m = Math.fround(means[j]!);
    const sd = Math.fround(stds[j]!);
    for (let i = 0; i < c.length; i++) {
      const v = Number.isNaN(c[i]!) ? m : c[i]!;
      out[i] = Math.fround(Math.fround(v - m) / sd);
    }
    return out;
  });
}

export function trainLogreg(table: Table, params: Partial<LogregParams> = {}): LogregModel {
  const p = { ...DEFAULT_LOGREG, ...params };
  const task = table.task ?? 'binary';
  const link = task === 'regression' ? (z: number) => z : sigmoid;
  const features = table.features;
  const encodings = features.filter((f) => f.kind === 'categorical').map((f) => targetEncoding(f.name, table.categorical[f.name]!, table.label, p.smoothing, task));
  const cols = featureMatrix(table, features, encodings);
  const means = cols.map((c) => {
    let s = 0;
    let n = 0;
    for (const v of c) {
      if (Number.isNaN(v)) continue;
      s += v;
      n++;
    }
    return Math.fround(n ? s / n : 0);
  });
  const stds = cols.map((c, j) => {
    let s = 0;
    let n = 0;
    for (const v of c) {
      if (Number.isNaN(v)) continue;
      s += (v - means[j]!) ** 2;
      n++;
    }
    const sd = Math.sqrt(n ? s / n : 0);
    return Math.fround(sd > 1e-12 ? sd : 1);
  });
  const x = design(cols, means, stds);
  const d = x.length + 1; // + intercept
  const beta = new Array<number>(d).fill(0);
  const y = table.label;
  let iterations = 0;
  for (; iterations < p.maxIterations; iterations++) {
    const grad = new Array<number>(d).fill(0);
    const hess = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    const row = new Array<number>(d).fill(1);
    for (let i = 0; i < table.rows; i++) {
      let z = beta[d - 1]!;
      for (let j = 0; j < d - 1; j++) z += beta[j]! * (row[j] = x[j]![i]!);
      row[d - 1] = 1;
      const pr = link(z);
      const w = task === 'regression' ? 1 : Math.max(pr * (1 - pr), 1e-12);
      const r = pr - y[i]!;
      for (let a = 0; a < d; a++) {
        grad[a] = grad[a]! + r * row[a]!;
        for (let b = 0; b <= a; b++) hess[a]![b] = hess[a]![b]! + w * row[a]! * row[b]!;
      }
    }
    for (let a = 0; a < d; a++) {
      for (let b = a + 1; b < d; b++) hess[a]![b] = hess[b]![a]!;
      if (a < d - 1) {
        grad[a] = grad[a]! + p.l2 * table.rows * beta[a]!;
        hess[a]![a] = hess[a]![a]! + p.l2 * table.rows;
      }
    }
    const step = solveSpd(hess, grad);
    let size = 0;
    for (let a = 0; a < d; a++) {
      beta[a] = beta[a]! - step[a]!;
      size = Math.max(size, Math.abs(step[a]!));
    }
    if (size < 1e-8) break;
  }
  return {
    kind: 'logreg',
    task,
    params: p,
    features,
    encodings,
    means,
    stds,
    weights: beta.slice(0, d - 1).map(Math.fround),
    bias: Math.fround(beta[d - 1]!),
    iterations,
  };
}

export function predictLogreg(model: LogregModel, table: Table): Float64Array {
  const x = design(featureMatrix(table, model.features, model.encodings), model.means, model.stds);
  const out = new Float64Array(table.rows);
  for (let i = 0; i < table.rows; i++) {
    let z = model.bias;
    for (let j = 0; j < x.length; j++) z += model.weights[j]! * x[j]![i]!;
    out[i] = model.task === 'regression' ? z : sigmoid(z);
  }
  return out;
}

export function exportLogregOnnx(model: LogregModel, metadata: Record<string, string> = {}): Buffer {
  const f = model.features.length;
  const regression = model.task === 'regression';
  const output = outputOf(model.task);
  return serializeModel({
    graphName: regression ? 'ridge_regression' : 'logreg_binary',
    inputs: rawFeatureInputs(model.features),
    outputs: [{ name: output, type: 'FLOAT', shape: ['batch', 1] }],
    initializers: [
      { name: 'mean', type: 'FLOAT', dims: [1, f], values: model.means },
      { name: 'std', type: 'FLOAT', dims: [1, f], values: model.stds },
      { name: 'W', type: 'FLOAT', dims: [f, 1], values: model.weights },
      { name: 'b', type: 'FLOAT', dims: [1], values: [model.bias] },
    ],
    nodes: [
      ...preprocessingNodes(model.features, model.encodings),
      {
        opType: 'Imputer',
        domain: 'ai.onnx.ml',
        inputs: ['features'],
        outputs: ['imputed'],
        name: 'impute_mean',
        attributes: { imputed_value_floats: { kind: 'floats', value: model.means }, replaced_value_float: { kind: 'float', value: NaN } },
      },
      { opType: 'Sub', inputs: ['imputed', 'mean'], outputs: ['centred'] },
      { opType: 'Div', inputs: ['centred', 'std'], outputs: ['scaled'] },
      { opType: 'MatMul', inputs: ['scaled', 'W'], outputs: ['logit_raw'] },
      { opType: 'Add', inputs: ['logit_raw', 'b'], outputs: [regression ? output : 'logit'] },
      ...(regression ? [] : [{ opType: 'Sigmoid', inputs: ['logit'], outputs: [output] }]),
    ],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
    metadata: { trainer: 'logreg', task: model.task, params: JSON.stringify(model.params), ...metadata },
  });
}
