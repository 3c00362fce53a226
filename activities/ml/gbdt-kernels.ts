/*
 * The GBDT loops that run on every thread (gbdt.ts's own and gbdt-worker.ts's). Each is a small
 * top-level function taking every array as an argument: V8 compiles that to tight monomorphic
 * code, where closures over a context object measured 2–3× slower.
 */

/** The arrays every thread sees: all backed by SharedArrayBuffers when there are workers. */
export interface GbdtShared {
  /** Row-major bins, bins[i·F + j]: one row's features are adjacent, for histograms. */
  bins: Uint8Array;
  /** Column-major bins, cols[j·n + i]: one feature's column stays in cache, for partitions. */
  cols: Uint8Array;
  n: number;
  /** Node rows: each node's rows are one range of it, ascending. */
  rows: Uint32Array;
  /** Where partition blocks put their left and right rows before they are placed. */
  lefts: Uint32Array;
  rights: Uint32Array;
  g: Float64Array;
  h: Float64Array;
  margin: Float64Array;
  /** Binary: the 0/1 labels (and `target` empty). */
  label: Uint8Array;
  /** Regression: the targets; multiclass: each row's class index (and `label` empty). */
  target: Float64Array;
  /** 0: log loss on `label`; 1: squared error on `target`; 2: softmax over `classes` classes. */
  objective: number;
  /** Multiclass: the class count, and per row (row-major, classes adjacent) the margins at the start of the round and their softmax; empty otherwise. */
  classes: number;
  margins: Float64Array;
  probs: Float64Array;
  /** One histogram per histogram task (histSize doubles each). */
  slots: Float64Array;
  /** TASK_WORDS ints per task: kind, start, end, then the kind's own (see runTask). */
  tasks: Int32Array;
  /** Two leaf values per task. */
  values: Float64Array;
  F: number;
  stride: number;
}

export const TASK_WORDS = 8;

/** GbdtShared.objective values. */
export const LOG_LOSS = 0;
export const SQUARED_ERROR = 1;
export const SOFTMAX = 2;

/**
 * Task kinds. Each writes only its own rows' or its own slot's memory, so tasks run in any
 * order on any thread with the same result.
 */
export const NOTHING = 0;
/** Gradients of rows [start, end) (multiclass: of class word 4); word 3 = 1: also reset rows[i] = i there. */
export const GRADIENTS = 1;
/** The histogram of rows[start, end) into slot word 3. */
export const HISTOGRAMS = 2;
/** Splits rows[start, end) on feature word 3 at bin word 4 into lefts/rights from start; left count → word 5. */
export const PARTITION = 3;
/** A PARTITION task's output placed: lefts at word 6, rights at word 7. */
export const PLACE = 4;
/** Adds values[2t] (bin ≤ word 4 of feature word 3) or values[2t + 1] (above) to the margins of rows[start, end). */
export const SPLIT_LEAVES = 5;
/** Adds values[2t] to the margins of rows[start, end). */
export const LEAF = 6;
/** Multiclass: the softmax of rows [start, end)'s margins, once a round, before any class's tree. */
export const SOFTMAX_PROBS = 7;

/** Log-loss gradients and hessians at rows [start, end)'s margins. */
export function gradients(margin: Float64Array, y: Uint8Array, g: Float64Array, h: Float64Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    const pr = 1 / (1 + Math.exp(-margin[i]!));
    const hess = pr * (1 - pr);
    g[i] = pr - y[i]!;
    h[i] = hess > 1e-16 ? hess : 1e-16;
  }
}

/** Squared-error gradients (margin − target) and unit hessians at rows [start, end). */
export function squaredErrorGradients(margin: Float64Array, y: Float64Array, g: Float64Array, h: Float64Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    g[i] = margin[i]! - y[i]!;
    h[i] = 1;
  }
}

/** Row-wise softmax of the k class margins of rows [start, end). */
function softmaxProbs(margins: Float64Array, probs: Float64Array, k: number, start: number, end: number): void {
  for (let at = start * k; at < end * k; at += k) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, margins[at + c]!);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += probs[at + c] = Math.exp(margins[at + c]! - max);
    for (let c = 0; c < k; c++) probs[at + c] = probs[at + c]! / sum;
  }
}

/** Softmax gradients of class c (xgboost's multi:softprob: p − y, hessian 2p(1 − p)) at rows [start, end). */
export function softmaxGradients(probs: Float64Array, k: number, c: number, y: Float64Array, g: Float64Array, h: Float64Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    const pr = probs[i * k + c]!;
    const hess = 2 * pr * (1 - pr);
    g[i] = pr - (y[i] === c ? 1 : 0);
    h[i] = hess > 1e-16 ? hess : 1e-16;
  }
}

type Accumulate = (hist: Float64Array, at: number, rows: Uint32Array, start: number, end: number, bins: Uint8Array, g: Float64Array, h: Float64Array) => void;

/** Feature counts up to this get an unrolled kernel; the rest loop over features. */
const UNROLL_MAX = 64;
const kernels = new Map<string, Accumulate>();

/**
 * The histogram kernel for F features: adds rows[start, end) to hist[at, at + F·stride), per
 * feature `stride` doubles of interleaved (sum g, sum h) per bin, rows in order. The loop over
 * features is unrolled with constant offsets — twice as fast as the loop, which V8 does not
 * unroll — by compiling it for this F once per thread. Every bin sums its rows in row order
 * either way, so both give the same bits.
 */
function kernel(F: number, stride: number): Accumulate {
  const key = `${F}/${stride}`;
  let k = kernels.get(key);
  if (k) return k;
  if (F > UNROLL_MAX) {
    k = (hist, at, rows, start, end, bins, g, h) => {
      const size = F * stride;
      for (let r = start; r < end; r++) {
        const i = rows[r]!;
        const gi = g[i]!;
        const hi = h[i]!;
        let b = i * F;
        for (let off = at; off < at + size; off += stride) {
          const x = off + (bins[b++]! << 1);
          hist[x] = hist[x]! + gi;
          hist[x + 1] = hist[x + 1]! + hi;
        }
      }
    };
  } else {
    const body = Array.from({ length: F }, (_, j) => `x = at + ${j * stride} + (bins[b + ${j}] << 1); hist[x] += gi; hist[x + 1] += hi;`).join('\n');
    // The source is built from two integers only, never from data.
    k = new Function('hist', 'at', 'rows', 'start', 'end', 'bins', 'g', 'h', `for (let r = start; r < end; r++) { const i = rows[r]; const gi = g[i]; const hi = h[i]; const b = i * ${F}; let x;\n${body}\n}`) as Accumulate;
  }
  kernels.set(key, k);
  return k;
}

/** The histogram of rows[start, end) into hist[at, at + F·stride), from zero. */
export function accumulate(hist: Float64Array, at: number, rows: Uint32Array, start: number, end: number, bins: Uint8Array, F: number, stride: number, g: Float64Array, h: Float64Array): void {
  hist.fill(0, at, at + F * stride);
  kernel(F, stride)(hist, at, rows, start, end, bins, g, h);
}

/** Stable partition of rows[start, end): bin ≤ splitBin to lefts, the others to rights, both from start. Branch-free (the side is data-dependent and would mispredict). Returns the left count. */
function partition(rows: Uint32Array, lefts: Uint32Array, rights: Uint32Array, col: Uint8Array, base: number, splitBin: number, start: number, end: number): number {
  let l = start;
  let r = start;
  for (let k = start; k < end; k++) {
    const i = rows[k]!;
    const right = (splitBin - col[base + i]!) >>> 31;
    lefts[l] = i;
    rights[r] = i;
    l += 1 - right;
    r += right;
  }
  return l - start;
}

/** Adds one of two values to the margins of rows[start, end) by each row's bin, from a two-entry table (a branch would mispredict). */
function addSplitLeaves(margin: Float64Array, rows: Uint32Array, col: Uint8Array, base: number, splitBin: number, start: number, end: number, values: Float64Array, at: number): void {
  for (let k = start; k < end; k++) {
    const i = rows[k]!;
    margin[i] = margin[i]! + values[at + ((splitBin - col[base + i]!) >>> 31)]!;
  }
}

function addLeaf(margin: Float64Array, rows: Uint32Array, start: number, end: number, w: number): void {
  for (let k = start; k < end; k++) {
    const i = rows[k]!;
    margin[i] = margin[i]! + w;
  }
}

function identity(rows: Uint32Array, start: number, end: number): void {
  for (let i = start; i < end; i++) rows[i] = i;
}

/** Runs task `t`. */
export function runTask(s: GbdtShared, t: number): void {
  const { tasks } = s;
  const w = t * TASK_WORDS;
  const kind = tasks[w]!;
  const start = tasks[w + 1]!;
  const end = tasks[w + 2]!;
  switch (kind) {
    case GRADIENTS:
      if (s.objective === SQUARED_ERROR) squaredErrorGradients(s.margin, s.target, s.g, s.h, start, end);
      else if (s.objective === SOFTMAX) softmaxGradients(s.probs, s.classes, tasks[w + 4]!, s.target, s.g, s.h, start, end);
      else gradients(s.margin, s.label, s.g, s.h, start, end);
      if (tasks[w + 3]) identity(s.rows, start, end);
      break;
    case HISTOGRAMS:
      accumulate(s.slots, tasks[w + 3]! * s.F * s.stride, s.rows, start, end, s.bins, s.F, s.stride, s.g, s.h);
      break;
    case PARTITION:
      tasks[w + 5] = partition(s.rows, s.lefts, s.rights, s.cols, tasks[w + 3]! * s.n, tasks[w + 4]!, start, end);
      break;
    case PLACE: {
      const left = tasks[w + 5]!;
      s.rows.set(s.lefts.subarray(start, start + left), tasks[w + 6]!);
      s.rows.set(s.rights.subarray(start, end - left), tasks[w + 7]!);
      break;
    }
    case SPLIT_LEAVES:
      addSplitLeaves(s.margin, s.rows, s.cols, tasks[w + 3]! * s.n, tasks[w + 4]!, start, end, s.values, 2 * t);
      break;
    case LEAF:
      addLeaf(s.margin, s.rows, start, end, s.values[2 * t]!);
      break;
    case SOFTMAX_PROBS:
      softmaxProbs(s.margins, s.probs, s.classes, start, end);
      break;
  }
}
