import { serializeModel, type Node, type Tensor } from '../../infra/onnx/model';
import { classOutputNodes, classOutputs, softmaxRows } from './class-output';
import { categoryStats, type CategoricalEncoding, type ClassList, type FeatureSpec, type Table } from './dataset';
import { featureMatrix, preprocessingNodes, rawFeatureInputs } from './features';
import { sigmoid } from './metrics';
import { outputOf } from './task-output';
import type { TaskKind } from '../../workflows/contracts/training-spec';

/**
 * L2-regularised logistic regression fitted by Newton's method (exact and deterministic for the
 * few features a tabular model has), or for a regression ridge regression (the same solve with
 * the identity link, exact in one step), or for a multiclass task softmax regression fitted by
 * block Newton. Categorical features are target-encoded (smoothed log-odds, smoothed means for a
 * regression, one smoothed log class share per class for a multiclass task), numeric ones
 * mean-imputed and standardised — all of it inside the exported ONNX graph.
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
  /** In model-column order; a multiclass model has k per categorical feature (class 0..k-1). */
  encodings: CategoricalEncoding[];
  /** Per model column: a multiclass model's categorical features have k columns each. */
  means: number[];
  stds: number[];
  /** Binary and regression; empty (and bias 0) for a multiclass model, which has classWeights. */
  weights: number[];
  bias: number;
  iterations: number;
  /** Multiclass: the classes in model order, and per class (k × columns) weights and intercepts, float32. */
  classes?: ClassList;
  classWeights?: number[][];
  classBiases?: number[];
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

/** log(part / whole), with a part of zero taken as half a row: a class a category (or the training rows) lack gets a finite code, not −∞. */
function logShare(part: number, whole: number): number {
  return Math.log((part > 0 ? part : 0.5) / whole);
}

/**
 * A categorical feature's multiclass target encoding: one column per class, class c's the
 * smoothed log share of c among the category's rows, log((n_cat,c + s·prior_c) / (n_cat + s)).
 * A category never seen in training gets log(prior_c).
 */
function classEncodings(feature: string, values: string[], label: ArrayLike<number>, k: number, smoothing: number): CategoricalEncoding[] {
  const counts = new Map<string, Float64Array>(); // per class, then the category's total at [k]
  const classCounts = new Float64Array(k);
  for (let i = 0; i < values.length; i++) {
    let c = counts.get(values[i]!);
    if (!c) counts.set(values[i]!, (c = new Float64Array(k + 1)));
    c[label[i]!]!++;
    c[k]!++;
    classCounts[label[i]!]!++;
  }
  const keys = [...counts.keys()].sort((a, b) => (a < b ? -1 : 1));
  return Array.from({ length: k }, (_, cls) => {
    const prior = classCounts[cls]! / values.length;
    return {
      feature,
      keys: keys.slice(),
      values: keys.map((key) => {
        const c = counts.get(key)!;
        return Math.fround(logShare(c[cls]! + smoothing * prior, c[k]! + smoothing));
      }),
      unknown: Math.fround(logShare(classCounts[cls]!, values.length)),
    };
  });
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

/** Per-column means (missing values skipped) and standard deviations (1 for a constant column), float32 as the graph stores them. */
function standardisation(cols: Float32Array[]): { means: number[]; stds: number[] } {
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
  return { means, stds };
}

/** Newton's method on the binary log loss (or, with the identity link, the squared error); the intercept is last. */
function fitNewton(x: Float32Array[], y: ArrayLike<number>, task: TaskKind, p: LogregParams): { beta: number[]; iterations: number } {
  const link = task === 'regression' ? (z: number) => z : sigmoid;
  const rows = y.length;
  const d = x.length + 1; // + intercept
  const beta = new Array<number>(d).fill(0);
  let iterations = 0;
  for (; iterations < p.maxIterations; iterations++) {
    const grad = new Array<number>(d).fill(0);
    const hess = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    const row = new Array<number>(d).fill(1);
    for (let i = 0; i < rows; i++) {
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
        grad[a] = grad[a]! + p.l2 * rows * beta[a]!;
        hess[a]![a] = hess[a]![a]! + p.l2 * rows;
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
  return { beta, iterations };
}

/** The classes of a multiclass table, checking its labels index them. */
function classesOf(table: Table): ClassList {
  const classes = table.classes;
  if (!classes || classes.length < 2) throw new Error('a multiclass table needs its classes (at least two)');
  for (let i = 0; i < table.rows; i++) {
    const c = table.label[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= classes.length) throw new Error(`row ${i}: label ${c} is not a class index (0..${classes.length - 1})`);
  }
  return classes;
}

// The multiclass fit calls these per row and class: bound once, as a global lookup per call is
// slow where the code runs in a vm context (jest's), several times the whole fit.
const { abs, exp, log, log1p } = Math;

/** log(1 + e^v) without overflow. */
const softplus = (v: number) => (v > 0 ? v : 0) + log1p(exp(-abs(v)));

/** log Σ_{j≠c} e^{z_j} over the k logits of one row starting at `at`. */
function logSumExpExcept(logits: Float64Array, at: number, k: number, c: number): number {
  let max = logits[at + (c === 0 ? 1 : 0)]!;
  for (let j = 0; j < k; j++) if (j !== c && logits[at + j]! > max) max = logits[at + j]!;
  let sum = 0;
  for (let j = 0; j < k; j++) if (j !== c) sum += exp(logits[at + j]! - max);
  return max + log(sum);
}

/**
 * One Newton step on class c's weights and intercept (last in `beta`) with the other classes held
 * fixed, applied to `beta` and to column c of the n×k `logits`. Given the others, class c's
 * probability is sigmoid(z_c − offset), offset = log Σ_{j≠c} e^{z_j}: a binary logistic
 * regression with an offset, so the block's Hessian is d×d. Unlike the binary fit, a block
 * starts wherever the other classes left it and can overshoot, so the step is halved while it
 * would raise the loss. Returns the largest change it made.
 */
function classStep(cols: Float32Array[], label: ArrayLike<number>, logits: Float64Array, k: number, c: number, beta: number[], ridge: number): number {
  const terms = classTerms(logits, label, k, c);
  const { hess, grad } = newtonSystem(cols, terms, beta, ridge);
  const step = solveSpd(hess, grad);
  const dz = project(cols, step);
  const loss = (t: number) => blockLoss(logits, label, k, c, terms.offset, dz, t) + penalty(beta, step, t, ridge);
  const before = loss(0);
  // Within rounding of the loss counts as no rise: near the optimum the decrease is below it.
  const limit = before + 1e-12 * Math.abs(before);
  let t = 1;
  for (let halvings = 0; halvings < 30 && loss(t) > limit; halvings++) t /= 2;
  let size = 0;
  for (let a = 0; a < beta.length; a++) {
    beta[a] = beta[a]! - t * step[a]!;
    size = Math.max(size, Math.abs(t * step[a]!));
  }
  for (let i = 0; i < dz.length; i++) logits[i * k + c] = logits[i * k + c]! - t * dz[i]!;
  return size;
}

interface ClassTerms {
  /** log Σ_{j≠c} e^{z_j}: the other classes, fixed during the step. */
  offset: Float64Array;
  /** p(1 − p), floored so the Hessian stays definite. */
  weight: Float64Array;
  /** p − y. */
  resid: Float64Array;
}

function classTerms(logits: Float64Array, label: ArrayLike<number>, k: number, c: number): ClassTerms {
  const n = label.length;
  const offset = new Float64Array(n);
  const weight = new Float64Array(n);
  const resid = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    offset[i] = logSumExpExcept(logits, i * k, k, c);
    const pr = 1 / (1 + exp(offset[i]! - logits[i * k + c]!));
    const w = pr * (1 - pr);
    weight[i] = w > 1e-12 ? w : 1e-12;
    resid[i] = pr - (label[i] === c ? 1 : 0);
  }
  return { offset, weight, resid };
}

/** The block's Hessian X'WX and gradient X'r, with the ridge on the weights (not the intercept, last). */
function newtonSystem(cols: Float32Array[], terms: ClassTerms, beta: number[], ridge: number): { hess: number[][]; grad: number[] } {
  const d = cols.length;
  const n = terms.weight.length;
  const grad = new Array<number>(d).fill(0);
  const hess = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const wx = new Float64Array(n);
  // Column pairs over typed arrays: quicker in JS than a row at a time, and d is small.
  for (let a = 0; a < d; a++) {
    const xa = cols[a]!;
    let g = 0;
    for (let i = 0; i < n; i++) {
      g += terms.resid[i]! * xa[i]!;
      wx[i] = terms.weight[i]! * xa[i]!;
    }
    grad[a] = a < d - 1 ? g + ridge * beta[a]! : g;
    for (let b = 0; b <= a; b++) {
      const xb = cols[b]!;
      let h = 0;
      for (let i = 0; i < n; i++) h += wx[i]! * xb[i]!;
      hess[a]![b] = hess[b]![a] = a === b && a < d - 1 ? h + ridge : h;
    }
  }
  return { hess, grad };
}

/** x_i · v for every row i. */
function project(cols: Float32Array[], v: number[]): Float64Array {
  const out = new Float64Array(cols[0]!.length);
  for (let a = 0; a < cols.length; a++) {
    const xa = cols[a]!;
    const va = v[a]!;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + va * xa[i]!;
  }
  return out;
}

/** Class c's log loss over the rows with its logits moved by −t·dz, the other classes the fixed `offset`. */
function blockLoss(logits: Float64Array, label: ArrayLike<number>, k: number, c: number, offset: Float64Array, dz: Float64Array, t: number): number {
  let s = 0;
  for (let i = 0; i < dz.length; i++) {
    const v = logits[i * k + c]! - t * dz[i]! - offset[i]!;
    s += softplus(v) - (label[i] === c ? v : 0);
  }
  return s;
}

/** The ridge on the weights (all of beta but the intercept, last) after a step of t·step. */
function penalty(beta: number[], step: number[], t: number, ridge: number): number {
  let s = 0;
  for (let a = 0; a < beta.length - 1; a++) s += (beta[a]! - t * step[a]!) ** 2;
  return 0.5 * ridge * s;
}

/**
 * Moves every class's weights and intercept by minus their mean across classes, and the logits
 * with them. The softmax is unchanged by a shift common to all classes and the L2 penalty is
 * least when the mean is zero, so this is an exact step along the directions only the penalty
 * (l2·n) curves — the ones block Newton, one class at a time, crawls along. Returns the largest change.
 */
function centreClasses(cols: Float32Array[], beta: number[][], logits: Float64Array, k: number): number {
  const d = cols.length;
  const mean = new Array<number>(d).fill(0);
  for (const b of beta) for (let a = 0; a < d; a++) mean[a] = mean[a]! + b[a]! / k;
  for (const b of beta) for (let a = 0; a < d; a++) b[a] = b[a]! - mean[a]!;
  const n = logits.length / k;
  const shift = new Float64Array(n);
  for (let a = 0; a < d; a++) {
    const xa = cols[a]!;
    for (let i = 0; i < n; i++) shift[i] = shift[i]! + mean[a]! * xa[i]!;
  }
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) logits[i * k + c] = logits[i * k + c]! - shift[i]!;
  return Math.max(...mean.map(Math.abs));
}

/** Softmax regression by block Newton (a sweep steps each class in turn, then centres them), the intercept last in each class's row. */
function fitSoftmax(x: Float32Array[], label: ArrayLike<number>, k: number, p: LogregParams): { beta: number[][]; iterations: number } {
  const n = label.length;
  const cols = [...x, new Float32Array(n).fill(1)];
  const beta = Array.from({ length: k }, () => new Array<number>(cols.length).fill(0));
  const logits = new Float64Array(n * k);
  let iterations = 0;
  for (; iterations < p.maxIterations; iterations++) {
    let size = 0;
    for (let c = 0; c < k; c++) size = Math.max(size, classStep(cols, label, logits, k, c, beta[c]!, p.l2 * n));
    size = Math.max(size, centreClasses(cols, beta, logits, k));
    if (size < 1e-8) break;
  }
  return { beta, iterations };
}

function trainMulticlass(table: Table, p: LogregParams): LogregModel {
  const classes = classesOf(table);
  const k = classes.length;
  const features = table.features;
  const encodings = features.filter((f) => f.kind === 'categorical').flatMap((f) => classEncodings(f.name, table.categorical[f.name]!, table.label, k, p.smoothing));
  const cols = featureMatrix(table, features, encodings);
  const { means, stds } = standardisation(cols);
  const { beta, iterations } = fitSoftmax(design(cols, means, stds), table.label, k, p);
  const d = cols.length;
  return {
    kind: 'logreg',
    task: 'multiclass',
    params: p,
    features,
    encodings,
    means,
    stds,
    weights: [],
    bias: 0,
    iterations,
    classes,
    classWeights: beta.map((b) => b.slice(0, d).map(Math.fround)),
    classBiases: beta.map((b) => Math.fround(b[d]!)),
  };
}

export function trainLogreg(table: Table, params: Partial<LogregParams> = {}): LogregModel {
  const p = { ...DEFAULT_LOGREG, ...params };
  const task = table.task ?? 'binary';
  if (task === 'multiclass') return trainMulticlass(table, p);
  const features = table.features;
  const encodings = features.filter((f) => f.kind === 'categorical').map((f) => targetEncoding(f.name, table.categorical[f.name]!, table.label, p.smoothing, task));
  const cols = featureMatrix(table, features, encodings);
  const { means, stds } = standardisation(cols);
  const { beta, iterations } = fitNewton(design(cols, means, stds), table.label, task, p);
  const d = beta.length;
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

/** A multiclass model's parts, or a clear error for a model that lacks them. */
function multiclassParts(model: LogregModel): { classes: ClassList; weights: number[][]; biases: number[] } {
  const { classes, classWeights, classBiases } = model;
  if (!classes || !classWeights || !classBiases) throw new Error('a multiclass logreg model needs classes, classWeights and classBiases');
  return { classes, weights: classWeights, biases: classBiases };
}

/** For a binary task the probability, for a regression the prediction; for a multiclass task n×k class probabilities, row-major (row i's class c at i·k + c). */
export function predictLogreg(model: LogregModel, table: Table): Float64Array {
  const x = design(featureMatrix(table, model.features, model.encodings), model.means, model.stds);
  if (model.task === 'multiclass') {
    const { classes, weights, biases } = multiclassParts(model);
    const k = classes.length;
    const logits = new Float64Array(table.rows * k);
    for (let c = 0; c < k; c++) {
      const w = weights[c]!;
      for (let i = 0; i < table.rows; i++) {
        let z = biases[c]!;
        for (let j = 0; j < x.length; j++) z += w[j]! * x[j]![i]!;
        logits[i * k + c] = z;
      }
    }
    return softmaxRows(logits, k);
  }
  const out = new Float64Array(table.rows);
  for (let i = 0; i < table.rows; i++) {
    let z = model.bias;
    for (let j = 0; j < x.length; j++) z += model.weights[j]! * x[j]![i]!;
    out[i] = model.task === 'regression' ? z : sigmoid(z);
  }
  return out;
}

/** The graph's front, whatever the head: encode, impute and standardise the model columns into `scaled`. */
function scaledColumns(model: LogregModel): { initializers: Tensor[]; nodes: Node[] } {
  const f = model.means.length;
  return {
    initializers: [
      { name: 'mean', type: 'FLOAT', dims: [1, f], values: model.means },
      { name: 'std', type: 'FLOAT', dims: [1, f], values: model.stds },
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
    ],
  };
}

/** Softmax regression: logits = scaled·W + b ([batch, k]), then the shared multiclass outputs. */
function exportMulticlass(model: LogregModel, metadata: Record<string, string>): Buffer {
  const { classes, weights, biases } = multiclassParts(model);
  const k = classes.length;
  const f = model.means.length;
  const w = new Array<number>(f * k);
  for (let j = 0; j < f; j++) for (let c = 0; c < k; c++) w[j * k + c] = weights[c]![j]!;
  const front = scaledColumns(model);
  const head = classOutputNodes('logits', classes);
  return serializeModel({
    graphName: 'logreg_multiclass',
    inputs: rawFeatureInputs(model.features),
    outputs: classOutputs(classes),
    initializers: [...front.initializers, { name: 'W', type: 'FLOAT', dims: [f, k], values: w }, { name: 'b', type: 'FLOAT', dims: [k], values: biases }, ...head.initializers],
    nodes: [...front.nodes, { opType: 'MatMul', inputs: ['scaled', 'W'], outputs: ['logits_raw'] }, { opType: 'Add', inputs: ['logits_raw', 'b'], outputs: ['logits'] }, ...head.nodes],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
    metadata: { trainer: 'logreg', task: model.task, params: JSON.stringify(model.params), classes: JSON.stringify(classes), ...metadata },
  });
}

export function exportLogregOnnx(model: LogregModel, metadata: Record<string, string> = {}): Buffer {
  if (model.task === 'multiclass') return exportMulticlass(model, metadata);
  const f = model.means.length;
  const regression = model.task === 'regression';
  const output = outputOf(model.task);
  const front = scaledColumns(model);
  return serializeModel({
    graphName: regression ? 'ridge_regression' : 'logreg_binary',
    inputs: rawFeatureInputs(model.features),
    outputs: [{ name: output, type: 'FLOAT', shape: ['batch', 1] }],
    initializers: [...front.initializers, { name: 'W', type: 'FLOAT', dims: [f, 1], values: model.weights }, { name: 'b', type: 'FLOAT', dims: [1], values: [model.bias] }],
    nodes: [
      ...front.nodes,
      { opType: 'MatMul', inputs: ['scaled', 'W'], outputs: ['logit_raw'] },
      { opType: 'Add', inputs: ['logit_raw', 'b'], outputs: [regression ? output : 'logit'] },
      ...(regression ? [] : [{ opType: 'Sigmoid', inputs: ['logit'], outputs: [output] }]),
    ],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
    metadata: { trainer: 'logreg', task: model.task, params: JSON.stringify(model.params), ...metadata },
  });
}
