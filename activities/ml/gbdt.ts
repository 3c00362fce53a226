import { serializeModel } from '../../infra/onnx/model';
import { categoryStats, seededRandom, type CategoricalEncoding, type ClassList, type FeatureSpec, type Table } from './dataset';
import { classOutputNodes, classOutputs, softmaxRows } from './class-output';
import { featureMatrix, preprocessingNodes, rawFeatureInputs } from './features';
import { GRADIENTS, HISTOGRAMS, LEAF, LOG_LOSS, PARTITION, PLACE, SOFTMAX, SOFTMAX_PROBS, SPLIT_LEAVES, SQUARED_ERROR, TASK_WORDS, type GbdtShared } from './gbdt-kernels';
import type { TaskKind } from '../../workflows/contracts/training-spec';
import { GbdtPool, allocate } from './gbdt-pool';
import { sigmoid } from './metrics';
import { outputOf } from './task-output';

/**
 * Histogram gradient-boosted trees, depth-wise growth: binary classification (log loss, the
 * margin through a sigmoid), regression (squared error, the margin is the prediction) or
 * multiclass (softmax: one tree per class per round, xgboost's multi:softprob).
 * Features are binned once; split thresholds are float32 data values, and leaf weights are
 * float32, so the exported ONNX TreeEnsembleRegressor computes exactly the scores seen here.
 */
export interface GbdtParams {
  rounds: number;
  maxDepth: number;
  learningRate: number;
  maxBins: number;
  lambda: number;
  minChildWeight: number;
  /** Row subsample per round (1 = all rows). */
  subsample: number;
  seed: number;
}

export const DEFAULT_GBDT: GbdtParams = { rounds: 100, maxDepth: 6, learningRate: 0.1, maxBins: 255, lambda: 1, minChildWeight: 1, subsample: 1, seed: 42 };

export interface GbdtTree {
  /** Per node: feature index, or -1 for a leaf. */
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  value: number[];
}

/** Training state after `round` rounds: JSON-serialisable, enough to continue bit-identically. */
export interface GbdtCheckpoint {
  round: number;
  baseScore: number;
  /** Multiclass: each class's starting margin (baseScore is the first). */
  baseScores?: number[];
  encodings: CategoricalEncoding[];
  trees: GbdtTree[];
}

export interface GbdtTrainOptions {
  /** Called after every round; `checkpoint()` builds the state to resume from. */
  onRound?: (p: { round: number; rounds: number; checkpoint: () => GbdtCheckpoint }) => void;
  /**
   * Continue training from this state: the result is bit-identical to an uninterrupted run with
   * the same table and params. A checkpoint that does not fit them throws.
   */
  resumeFrom?: GbdtCheckpoint;
  /**
   * Threads to train on, this one included (default 1): the caller's CPU budget. The model is
   * bit-identical for every count; helpers are started once per run and always stopped.
   */
  threads?: number;
}

export interface GbdtModel {
  kind: 'gbdt';
  task: TaskKind;
  params: GbdtParams;
  features: FeatureSpec[];
  encodings: CategoricalEncoding[];
  baseScore: number;
  /** Tree t adds to the margin of class t mod k; absent for binary and regression. */
  multiclass?: { classes: ClassList; baseScores: number[] };
  trees: GbdtTree[];
}

/**
 * Multiclass: category → rank grouping the categories by their most frequent class (then by
 * that class's share), so an ordinal split on the code can cut one class's categories off.
 */
function classRankEncoding(feature: string, values: string[], label: ArrayLike<number>, k: number): CategoricalEncoding {
  const counts = new Map<string, number[]>();
  for (let i = 0; i < values.length; i++) {
    let c = counts.get(values[i]!);
    if (!c) counts.set(values[i]!, (c = new Array<number>(k).fill(0)));
    c[label[i]!]!++;
  }
  const keyed = [...counts.entries()].map(([key, c]) => {
    let top = 0;
    for (let j = 1; j < k; j++) if (c[j]! > c[top]!) top = j;
    return { key, top, share: c[top]! / c.reduce((a, b) => a + b, 0) };
  });
  keyed.sort((a, b) => a.top - b.top || b.share - a.share || (a.key < b.key ? -1 : 1));
  return { feature, keys: keyed.map((e) => e.key), values: keyed.map((_, i) => i), unknown: -1 };
}

/** Category → rank by positive rate (mean target), so ordinal splits on the code separate high from low. */
function rankEncoding(feature: string, values: string[], label: ArrayLike<number>): CategoricalEncoding {
  const stats = [...categoryStats(values, label).entries()];
  stats.sort((a, b) => a[1].pos / a[1].n - b[1].pos / b[1].n || (a[0] < b[0] ? -1 : 1));
  return { feature, keys: stats.map(([k]) => k), values: stats.map((_, i) => i), unknown: -1 };
}


/**
 * Upper edges of up to maxBins bins: every distinct float32 value when there are few, else
 * values at quantiles of a strided sample (like xgboost's sketch, but deterministic). Edges are
 * data values, so thresholds in the exported trees are exact. NaN goes to bin 0.
 */
function binEdges(col: Float32Array, maxBins: number): Float32Array {
  const seen = new Set<number>();
  for (let i = 0; i < col.length && seen.size <= maxBins; i++) {
    const v = col[i]!;
    if (!Number.isNaN(v)) seen.add(v);
  }
  if (seen.size <= maxBins) return Float32Array.from(seen).sort();
  const stride = Math.max(1, Math.floor(col.length / 200_000));
  const sample: number[] = [];
  for (let i = 0; i < col.length; i += stride) if (!Number.isNaN(col[i]!)) sample.push(col[i]!);
  const sorted = Float32Array.from(sample).sort();
  const edges: number[] = [];
  for (let b = 1; b <= maxBins; b++) {
    const v = sorted[Math.min(sorted.length - 1, Math.floor((b * sorted.length) / maxBins) - 1)]!;
    // + 0: a −0 edge would come back from a JSON checkpoint as 0 (it bins the same).
    if (edges.length === 0 || v > edges[edges.length - 1]!) edges.push(v + 0);
  }
  // The largest value must be an edge, so that every value lands in a bin below the last.
  const max = sorted[sorted.length - 1]!;
  let top = max;
  for (let i = 0; i < col.length; i++) if (col[i]! > top) top = col[i]!;
  if (top > edges[edges.length - 1]!) edges[edges.length - 1] = top;
  return Float32Array.from(edges);
}

/** Bin of each value: the first edge ≥ value; NaN → bin 0 (so missing values go left). */
function binColumn(col: Float32Array, edges: Float32Array, out: Uint8Array): Uint8Array {
  for (let i = 0; i < col.length; i++) {
    const v = col[i]!;
    let lo = 0;
    if (!Number.isNaN(v)) {
      let hi = edges.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (v <= edges[mid]!) hi = mid;
        else lo = mid + 1;
      }
    }
    out[i] = lo;
  }
  return out;
}

/** murmur3's 32-bit finaliser: a bijection that spreads every input bit over the output. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Round `round`'s own generator, seeded from a hash of (seed, round): a run resumed at round r
 * draws exactly what an uninterrupted one would, and no round's draws depend on another's.
 */
function roundRandom(seed: number, round: number): () => number {
  return seededRandom(mix32((seed ^ Math.imul(round + 1, 0x9e3779b1)) >>> 0));
}

function sameEncodings(a: CategoricalEncoding[], b: CategoricalEncoding[]): boolean {
  return (
    a.length === b.length &&
    a.every((e, k) => {
      const o = b[k]!;
      return e.feature === o.feature && e.unknown === o.unknown && e.keys.length === o.keys.length && e.keys.every((key, i) => key === o.keys[i] && e.values[i] === o.values[i]);
    })
  );
}

/*
 * Hot loops live in small top-level functions that take every array as an argument: V8 compiles
 * them to tight monomorphic code, where the same loops inline in trainGbdt (whose variables its
 * closures capture, so they live in a context object) measured up to 2–3× slower.
 */

/**
 * This round's sample: rows[0, count) the rows drawn (ascending), out[0, n − count) the others,
 * and the drawn rows' gradient sums into sums[0], sums[1]. Branch-free, like partition. Returns count.
 */
function sampleRows(rows: Uint32Array, out: Uint32Array, n: number, rand: () => number, rate: number, g: Float64Array, h: Float64Array, sums: Float64Array): number {
  let count = 0;
  let skipped = 0;
  let G = 0;
  let H = 0;
  for (let i = 0; i < n; i++) {
    const take = rand() < rate ? 1 : 0;
    rows[count] = i;
    out[skipped] = i;
    count += take;
    skipped += 1 - take;
    G += take * g[i]!;
    H += take * h[i]!;
  }
  sums[0] = G;
  sums[1] = H;
  return count;
}

/** Rows per histogram block: large enough that zeroing and summing a block's histogram costs little. */
const BLOCK_ROWS = 16_384;
/** Memory for the blocks' histograms, at most: with many features, blocks grow instead. */
const SLOT_BYTES = 64 * 1024 * 1024;

/** hist = slot (first block) or hist += slot: the blocks of a node summed in block order. */
function reduceSlot(hist: Float64Array, slots: Float64Array, at: number, size: number, first: boolean): void {
  if (first) hist.set(slots.subarray(at, at + size));
  else for (let x = 0; x < size; x++) hist[x] = hist[x]! + slots[at + x]!;
}

/** big −= small, bin by bin: the larger child's histogram from its parent's and its sibling's. */
function subtract(big: Float64Array, small: Float64Array, size: number): void {
  for (let x = 0; x < size; x++) big[x] = big[x]! - small[x]!;
}

/** Where the best split of a node was found: gain > 0 when there is one. */
interface Split {
  gain: number;
  feature: number;
  bin: number;
  GL: number;
  HL: number;
}

/**
 * Best split over all features: rows with bin ≤ b go left. Gains are compared strictly in
 * feature-then-bin order, so ties keep the first candidate (deterministic).
 */
function bestSplit(hist: Float64Array, stride: number, binCount: Int32Array, G: number, H: number, lambda: number, minChildWeight: number, best: Split): void {
  best.gain = 1e-12;
  best.feature = -1;
  best.bin = -1;
  best.GL = 0;
  best.HL = 0;
  const parent = (G * G) / (H + lambda);
  for (let j = 0; j < binCount.length; j++) {
    const k = binCount[j]!;
    let GL = 0;
    let HL = 0;
    const off = j * stride;
    for (let b = 0; b < k - 1; b++) {
      GL += hist[off + 2 * b]!;
      HL += hist[off + 2 * b + 1]!;
      const HR = H - HL;
      if (HL < minChildWeight || HR < minChildWeight) continue;
      const GR = G - GL;
      const gain = (GL * GL) / (HL + lambda) + (GR * GR) / (HR + lambda) - parent;
      if (gain > best.gain) {
        best.gain = gain;
        best.feature = j;
        best.bin = b;
        best.GL = GL;
        best.HL = HL;
      }
    }
  }
}

/** A tree as flat typed arrays for routing rows by their bins: node id's children at 2·id, 2·id + 1. */
interface BinnedTree {
  feature: Int32Array;
  bin: Int32Array;
  child: Int32Array;
  value: Float64Array;
}

function binnedTree(tree: GbdtTree, splitBin: ArrayLike<number>): BinnedTree {
  const child = new Int32Array(2 * tree.feature.length);
  for (let id = 0; id < tree.feature.length; id++) {
    child[2 * id] = tree.left[id]!;
    child[2 * id + 1] = tree.right[id]!;
  }
  return { feature: Int32Array.from(tree.feature), bin: Int32Array.from(splitBin), child, value: Float64Array.from(tree.value) };
}

/** Routes rows[0, count) through the tree on their bins (branch-free) and adds the leaf values to their margins. */
function addTree(margin: Float64Array, rows: Uint32Array, count: number, cols: Uint8Array[], t: BinnedTree): void {
  const { feature, bin, child, value } = t;
  for (let k = 0; k < count; k++) {
    const i = rows[k]!;
    let id = 0;
    let f = feature[0]!;
    while (f >= 0) {
      id = child[2 * id + ((bin[id]! - cols[f]![i]!) >>> 31)]!;
      f = feature[id]!;
    }
    margin[i] = margin[i]! + value[id]!;
  }
}

/**
 * A checkpointed tree's split bins on this data. Thresholds are bin edges, so each maps back to
 * exactly one bin; one that is not an edge here means the checkpoint came from other data.
 */
function splitBinsOf(tree: GbdtTree, edges: Float32Array[], treeIndex: number): number[] {
  const fail = (why: string) => new Error(`checkpoint does not match this data: tree ${treeIndex} ${why} (other rows, or another maxBins?)`);
  const nodes = tree.feature.length;
  if (nodes === 0 || [tree.threshold, tree.left, tree.right, tree.value].some((a) => a.length !== nodes)) throw fail('is malformed');
  return tree.feature.map((f, id) => {
    if (f < 0) return -1;
    const e = edges[f];
    if (!e || !(tree.left[id]! > id && tree.left[id]! < nodes && tree.right[id]! > id && tree.right[id]! < nodes)) throw fail('is malformed');
    const t = tree.threshold[id]!;
    let lo = 0;
    let hi = e.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t <= e[mid]!) hi = mid;
      else lo = mid + 1;
    }
    if (e[lo] !== t || lo >= e.length - 1) throw fail(`splits feature ${f} at ${t}, which is not one of its bin edges`);
    return lo;
  });
}

interface Node {
  id: number;
  start: number;
  end: number;
  depth: number;
  hist: Float64Array;
  G: number;
  H: number;
}

/**
 * Trains depth-wise with histograms. Each feature is binned once (uint8, row-major for histogram
 * building, column-major for partitioning); each node's rows are a range of one Uint32Array that
 * splits partition in place; the root's histogram is built in one pass over the rows, and for
 * each later split only the smaller child's — the larger one is its parent's minus it. Leaf
 * values reach the margins through the leaves' row ranges, or for the last level's splits by
 * each row's bin in one pass; rows outside a subsample are routed through the tree on their bins.
 *
 * The row passes (gradients, a level's partitions, its histograms, the margin updates) run as
 * tasks over blocks of rows on `options.threads` threads (gbdt-pool.ts). A histogram is the sum
 * of its blocks' histograms in block order, and blocks depend only on the data, so every thread
 * count gives the same model, bit for bit.
 *
 * With `resumeFrom`, margins are rebuilt by routing every row through the checkpoint's trees on
 * the bins (each threshold maps back to its bin), adding each tree's leaf value in tree order just
 * as the rounds did; since every round draws its subsample from its own generator, the result is
 * bit-identical to an uninterrupted run. A checkpoint whose encodings, base score or thresholds
 * do not fit this data, or with more rounds than `params.rounds`, is refused.
 */
export function trainGbdt(table: Table, params: Partial<GbdtParams> = {}, options: GbdtTrainOptions = {}): GbdtModel {
  const p: GbdtParams = { ...DEFAULT_GBDT, ...params };
  if (p.maxBins > 255) throw new Error('maxBins must be at most 255');
  // A level's tasks are sized for up to 2^maxDepth nodes.
  if (p.maxDepth > 20) throw new Error('maxDepth must be at most 20');
  const features = table.features;
  const F = features.length;
  const n = table.rows;
  const y = table.label;
  const task = table.task ?? 'binary';
  const classes = task === 'multiclass' ? table.classes : undefined;
  if (task === 'multiclass' && !(classes && classes.length >= 2)) throw new Error('a multiclass table needs at least two classes');
  // Trees per round: one per class for multiclass.
  const K = classes?.length ?? 1;
  const encodings = features.filter((f) => f.kind === 'categorical').map((f) => (classes ? classRankEncoding(f.name, table.categorical[f.name]!, y, K) : rankEncoding(f.name, table.categorical[f.name]!, y)));
  const baseScores = startingMargins(y, task, K);
  const baseScore = baseScores[0]!;
  const resume = options.resumeFrom;
  if (resume) {
    if (!sameEncodings(resume.encodings, encodings)) throw new Error('checkpoint does not match this data: its categorical encodings differ');
    if (resume.round > p.rounds || resume.round * K !== resume.trees.length) throw new Error(`checkpoint at round ${resume.round} (${resume.trees.length} trees) does not fit a ${p.rounds}-round run of ${K} tree(s) a round`);
    const theirs = resume.baseScores ?? [resume.baseScore];
    if (theirs.length !== K || theirs.some((b, c) => b !== baseScores[c])) throw new Error(`checkpoint does not match this data: its base scores ${theirs.join(', ')} are not this data's ${baseScores.join(', ')}`);
  }

  const featureCols = featureMatrix(table, features, encodings);
  const edges = featureCols.map((c) => binEdges(c, p.maxBins));
  const binCount = Int32Array.from(edges, (e) => e.length);
  const stride = 2 * Math.max(1, ...binCount);
  const histSize = F * stride;
  const threads = Math.max(1, Math.floor(options.threads ?? 1));
  const multi = threads > 1;
  // Block size and capacities follow from the data alone, never from the thread count: the
  // blocks fix the order of every floating-point sum.
  const block = Math.max(BLOCK_ROWS, Math.ceil((n * histSize * 8) / SLOT_BYTES));
  const slotCount = Math.ceil(n / block) + 1;
  // A level's tasks: its nodes' rows in blocks, at most one partial block per node.
  const taskCount = Math.ceil(n / block) + Math.min(n, 2 ** p.maxDepth) + 1;
  const shared: GbdtShared = {
    bins: allocate(Uint8Array, 1, n * F, multi),
    cols: allocate(Uint8Array, 1, n * F, multi),
    n,
    rows: allocate(Uint32Array, 4, n, multi),
    lefts: allocate(Uint32Array, 4, n, multi),
    rights: allocate(Uint32Array, 4, n, multi),
    g: allocate(Float64Array, 8, n, multi),
    h: allocate(Float64Array, 8, n, multi),
    margin: allocate(Float64Array, 8, n, multi),
    label: allocate(Uint8Array, 1, task === 'binary' ? n : 0, multi),
    target: allocate(Float64Array, 8, task === 'binary' ? 0 : n, multi),
    objective: task === 'regression' ? SQUARED_ERROR : task === 'multiclass' ? SOFTMAX : LOG_LOSS,
    classes: K,
    margins: allocate(Float64Array, 8, classes ? n * K : 0, multi),
    probs: allocate(Float64Array, 8, classes ? n * K : 0, multi),
    slots: allocate(Float64Array, 8, slotCount * histSize, multi),
    tasks: allocate(Int32Array, 4, TASK_WORDS * taskCount, multi),
    values: allocate(Float64Array, 8, 2 * taskCount, multi),
    F,
    stride,
  };
  const { bins, rows, g, h, margin, slots, tasks, values } = shared;
  const cols = featureCols.map((c, j) => binColumn(c, edges[j]!, shared.cols.subarray(j * n, (j + 1) * n)));
  for (let j = 0; j < F; j++) {
    const col = cols[j]!;
    for (let i = 0, at = j; i < n; i++, at += F) bins[at] = col[i]!;
  }
  if (task === 'binary') shared.label.set(y);
  else shared.target.set(y);
  // Multiclass: `margin` holds one tree's additions, which go to the class's column of `margins` once the tree is grown.
  const { margins } = shared;
  for (let i = 0; i < margins.length; i++) margins[i] = baseScores[i % K]!;
  margin.fill(classes ? 0 : baseScore);
  const addToClass = (c: number) => {
    for (let i = 0; i < n; i++) margins[i * K + c] = margins[i * K + c]! + margin[i]!;
  };
  const outside = new Uint32Array(n);
  const trees: GbdtTree[] = [];
  if (resume) {
    for (let i = 0; i < n; i++) rows[i] = i;
    resume.trees.forEach((t, k) => {
      addTree(margin, rows, n, cols, binnedTree(t, splitBinsOf(t, edges, k)));
      if (classes) {
        addToClass(k % K);
        margin.fill(0);
      }
      trees.push({ feature: [...t.feature], threshold: [...t.threshold], left: [...t.left], right: [...t.right], value: [...t.value] });
    });
  }
  // Histograms are reused across nodes and rounds: allocating one per node churns the GC.
  const pool: Float64Array[] = [];
  const takeHist = () => pool.pop()?.fill(0) ?? new Float64Array(histSize);
  const sums = new Float64Array(2);
  const split: Split = { gain: 0, feature: -1, bin: -1, GL: 0, HL: 0 };
  const checkpoint = (): GbdtCheckpoint => ({ round: trees.length / K, baseScore, ...(classes ? { baseScores } : {}), encodings, trees: trees.map((t) => ({ ...t })) });

  const workers = new GbdtPool(shared, threads);
  let queued = 0;
  /** Queues a task over [start, end) of `kind`, returns its index. */
  const queue = (kind: number, start: number, end: number, a = 0, b = 0): number => {
    const w = queued * TASK_WORDS;
    tasks[w] = kind;
    tasks[w + 1] = start;
    tasks[w + 2] = end;
    tasks[w + 3] = a;
    tasks[w + 4] = b;
    return queued++;
  };
  const runQueued = () => {
    workers.run(queued);
    queued = 0;
  };
  /**
   * Each node's histogram over its rows: its rows in blocks of `block`, one task (and slot) per
   * block, and the blocks' histograms summed in block order. Batches fill at most `slotCount` slots.
   */
  const buildHistograms = (nodes: Node[]) => {
    let first = 0;
    const flush = (end: number) => {
      runQueued();
      for (let k = first, slot = 0; k < end; k++) {
        const { start, end: stop, hist } = nodes[k]!;
        for (let at = start; at < stop; at += block, slot++) reduceSlot(hist, slots, slot * histSize, histSize, at === start);
      }
    };
    for (let k = 0; k < nodes.length; k++) {
      const { start, end } = nodes[k]!;
      if (queued + Math.ceil((end - start) / block) > slotCount) {
        flush(k);
        first = k;
      }
      for (let at = start; at < end; at += block) queue(HISTOGRAMS, at, Math.min(end, at + block), queued);
    }
    flush(nodes.length);
  };
  /** Queues tasks over a node's rows in blocks; returns the first task's index. */
  const queueBlocks = (kind: number, start: number, end: number, a = 0, b = 0): number => {
    const first = queued;
    for (let at = start; at < end; at += block) queue(kind, at, Math.min(end, at + block), a, b);
    return first;
  };

  try {
    for (let round = trees.length / K; round < p.rounds; round++) {
      if (classes) {
        for (let start = 0; start < n; start += block) queue(SOFTMAX_PROBS, start, Math.min(n, start + block));
        runQueued();
      }
      for (let cls = 0; cls < K; cls++) {
        let count = n;
        for (let start = 0; start < n; start += block) queue(GRADIENTS, start, Math.min(n, start + block), p.subsample < 1 ? 0 : 1, cls);
        runQueued();
        if (p.subsample < 1) count = sampleRows(rows, outside, n, roundRandom(p.seed, round), p.subsample, g, h, sums);
        const root: Node = { id: 0, start: 0, end: count, depth: 0, hist: takeHist(), G: 0, H: 0 };
        buildHistograms([root]);
        if (p.subsample < 1) {
          root.G = sums[0]!;
          root.H = sums[1]!;
        } else {
          // The root's sums from its histogram, summed in a fixed (bin) order like every other sum.
          for (let b = 0; b < binCount[0]!; b++) {
            root.G += root.hist[2 * b]!;
            root.H += root.hist[2 * b + 1]!;
          }
        }

        const tree: GbdtTree = { feature: [], threshold: [], left: [], right: [], value: [] };
        const splitBin: number[] = [];
        const newNode = () => {
          tree.feature.push(-1);
          tree.threshold.push(0);
          tree.left.push(-1);
          tree.right.push(-1);
          tree.value.push(0);
          splitBin.push(-1);
          return tree.feature.length - 1;
        };
        root.id = newNode();
        // + 0 turns the −0 of an empty node into 0, which survives a JSON checkpoint.
        const leafValue = (G: number, H: number) => Math.fround((-G / (H + p.lambda)) * p.learningRate) + 0;
        // Margin updates, queued to run in one batch once the tree is grown.
        const leafTasks: { kind: number; start: number; end: number; feature: number; bin: number; left: number; right: number }[] = [];
        const makeLeaf = (node: Node) => {
          tree.value[node.id] = leafValue(node.G, node.H);
          leafTasks.push({ kind: LEAF, start: node.start, end: node.end, feature: 0, bin: 0, left: tree.value[node.id]!, right: 0 });
          pool.push(node.hist);
        };
        let level: Node[] = [root];
        while (level.length) {
          const splits: { node: Node; first: number; GL: number; HL: number }[] = [];
          for (const node of level) {
            if (node.depth >= p.maxDepth || node.end - node.start < 2) {
              makeLeaf(node);
              continue;
            }
            bestSplit(node.hist, stride, binCount, node.G, node.H, p.lambda, p.minChildWeight, split);
            if (split.feature < 0) {
              makeLeaf(node);
              continue;
            }
            const { feature: f, bin, GL, HL } = split;
            const leftId = newNode();
            const rightId = newNode();
            tree.feature[node.id] = f;
            tree.threshold[node.id] = edges[f]![bin]!;
            tree.left[node.id] = leftId;
            tree.right[node.id] = rightId;
            splitBin[node.id] = bin;
            if (node.depth + 1 >= p.maxDepth) {
              // Both children are leaves: one pass adds their values to the margins, no partition.
              tree.value[leftId] = leafValue(GL, HL);
              tree.value[rightId] = leafValue(node.G - GL, node.H - HL);
              leafTasks.push({ kind: SPLIT_LEAVES, start: node.start, end: node.end, feature: f, bin, left: tree.value[leftId]!, right: tree.value[rightId]! });
              pool.push(node.hist);
              continue;
            }
            splits.push({ node, first: queueBlocks(PARTITION, node.start, node.end, f, bin), GL, HL });
          }
          if (!splits.length) break;
          // Partition every split node of the level in blocks, then place each block's lefts and
          // rights at their offsets in the node: the same stable partition for any thread count.
          const partitioned = queued;
          runQueued();
          const next: Node[] = [];
          const built: Node[] = [];
          const parents: Float64Array[] = [];
          for (const { node, first, GL, HL } of splits) {
            const last = first + Math.ceil((node.end - node.start) / block);
            let mid = node.start;
            for (let t = first; t < last; t++) mid += tasks[t * TASK_WORDS + 5]!;
            let l = node.start;
            let r = mid;
            for (let t = first; t < last; t++) {
              const w = t * TASK_WORDS;
              tasks[w] = PLACE;
              tasks[w + 6] = l;
              tasks[w + 7] = r;
              l += tasks[w + 5]!;
              r += tasks[w + 2]! - tasks[w + 1]! - tasks[w + 5]!;
            }
            const left: Node = { id: tree.left[node.id]!, start: node.start, end: mid, depth: node.depth + 1, hist: node.hist, G: GL, H: HL };
            const right: Node = { id: tree.right[node.id]!, start: mid, end: node.end, depth: node.depth + 1, hist: node.hist, G: node.G - GL, H: node.H - HL };
            // Only the smaller child's histogram is built; the larger one's is its parent's minus it.
            const small = mid - node.start <= node.end - mid ? left : right;
            small.hist = takeHist();
            built.push(small);
            parents.push(node.hist);
            next.push(left, right);
          }
          queued = partitioned;
          runQueued();
          // All of a level's histograms in one batch: one hand-off to the helpers per level.
          buildHistograms(built);
          built.forEach((small, k) => subtract(parents[k]!, small.hist, histSize));
          level = next;
        }
        trees.push(tree);
        for (const lt of leafTasks) {
          if (queued + Math.ceil((lt.end - lt.start) / block) > taskCount) runQueued();
          const first = queueBlocks(lt.kind, lt.start, lt.end, lt.feature, lt.bin);
          for (let t = first; t < queued; t++) {
            values[2 * t] = lt.left;
            values[2 * t + 1] = lt.right;
          }
        }
        runQueued();
        // Rows outside this round's sample were never partitioned: route them through the tree.
        if (count < n) addTree(margin, outside, n - count, cols, binnedTree(tree, splitBin));
        if (classes) {
          addToClass(cls);
          margin.fill(0);
        }
      }
      options.onRound?.({ round: round + 1, rounds: p.rounds, checkpoint });
    }
  } finally {
    workers.close();
  }
  return { kind: 'gbdt', task, params: p, features, encodings, baseScore, ...(classes ? { multiclass: { classes, baseScores } } : {}), trees };
}

/** Starting margins: the mean target (regression), the positive rate's log-odds (binary), each class's log share (multiclass). */
function startingMargins(y: ArrayLike<number>, task: TaskKind, k: number): number[] {
  const n = y.length;
  if (task === 'multiclass') {
    const counts = new Array<number>(k).fill(0);
    for (let i = 0; i < n; i++) counts[y[i]!]!++;
    return counts.map((c) => Math.fround(Math.log(Math.max(1e-6, c / n))));
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += y[i]!;
  if (task === 'regression') return [Math.fround(sum / n)];
  const rate = Math.min(1 - 1e-6, Math.max(1e-6, sum / n));
  return [Math.fround(Math.log(rate / (1 - rate)))];
}

/**
 * The model's probabilities (binary), predictions (regression) or class probabilities
 * (multiclass: rows × k, row-major) on raw features, computed the way the ONNX graph does.
 */
export function predictGbdt(model: GbdtModel, table: Table): Float64Array {
  const cols = featureMatrix(table, model.features, model.encodings);
  const starts = model.multiclass?.baseScores ?? [model.baseScore];
  const K = starts.length;
  const margins = new Float64Array(table.rows * K);
  for (let i = 0; i < table.rows; i++) {
    for (let c = 0; c < K; c++) margins[i * K + c] = starts[c]!;
    model.trees.forEach((t, ti) => {
      let id = 0;
      while (t.feature[id]! >= 0) {
        const v = cols[t.feature[id]!]![i]!;
        id = Number.isNaN(v) || v <= t.threshold[id]! ? t.left[id]! : t.right[id]!;
      }
      margins[i * K + (ti % K)]! += t.value[id]!;
    });
  }
  if (model.multiclass) return softmaxRows(margins, K);
  return model.task === 'regression' ? margins : margins.map(sigmoid);
}



export function exportGbdtOnnx(model: GbdtModel, metadata: Record<string, string> = {}): Buffer {
  const ids = { tree: [] as number[], node: [] as number[], feature: [] as number[], mode: [] as string[], value: [] as number[], t: [] as number[], f: [] as number[], missing: [] as number[] };
  const target = { tree: [] as number[], node: [] as number[], weight: [] as number[], id: [] as number[] };
  const K = model.multiclass?.classes.length ?? 1;
  model.trees.forEach((tree, ti) => {
    for (let id = 0; id < tree.feature.length; id++) {
      const leaf = tree.feature[id]! < 0;
      ids.tree.push(ti);
      ids.node.push(id);
      ids.feature.push(leaf ? 0 : tree.feature[id]!);
      ids.mode.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      ids.value.push(leaf ? 0 : tree.threshold[id]!);
      ids.t.push(leaf ? 0 : tree.left[id]!);
      ids.f.push(leaf ? 0 : tree.right[id]!);
      // NaN goes left, as in training (missing values are in bin 0).
      ids.missing.push(leaf ? 0 : 1);
      if (leaf) {
        target.tree.push(ti);
        target.node.push(id);
        target.weight.push(tree.value[id]!);
        target.id.push(ti % K);
      }
    }
  });
  const regression = model.task === 'regression';
  const output = outputOf(model.task);
  const mc = model.multiclass;
  const classEnd = mc ? classOutputNodes('logits', mc.classes) : undefined;
  return serializeModel({
    graphName: `gbdt_${model.task}`,
    inputs: rawFeatureInputs(model.features),
    outputs: mc ? classOutputs(mc.classes) : [{ name: output, type: 'FLOAT', shape: ['batch', 1] }],
    ...(classEnd ? { initializers: classEnd.initializers } : {}),
    nodes: [
      ...preprocessingNodes(model.features, model.encodings),
      {
        opType: 'TreeEnsembleRegressor',
        domain: 'ai.onnx.ml',
        inputs: ['features'],
        outputs: [mc ? 'logits' : regression ? output : 'logit'],
        name: 'trees',
        attributes: {
          n_targets: { kind: 'int', value: K },
          aggregate_function: { kind: 'string', value: 'SUM' },
          base_values: { kind: 'floats', value: mc?.baseScores ?? [model.baseScore] },
          post_transform: { kind: 'string', value: 'NONE' },
          nodes_treeids: { kind: 'ints', value: ids.tree },
          nodes_nodeids: { kind: 'ints', value: ids.node },
          nodes_featureids: { kind: 'ints', value: ids.feature },
          nodes_modes: { kind: 'strings', value: ids.mode },
          nodes_values: { kind: 'floats', value: ids.value },
          nodes_truenodeids: { kind: 'ints', value: ids.t },
          nodes_falsenodeids: { kind: 'ints', value: ids.f },
          nodes_missing_value_tracks_true: { kind: 'ints', value: ids.missing },
          target_treeids: { kind: 'ints', value: target.tree },
          target_nodeids: { kind: 'ints', value: target.node },
          target_ids: { kind: 'ints', value: target.id },
          target_weights: { kind: 'floats', value: target.weight },
        },
      },
      ...(classEnd?.nodes ?? (regression ? [] : [{ opType: 'Sigmoid', inputs: ['logit'], outputs: [output], name: 'sigmoid' }])),
    ],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
    metadata: { trainer: 'gbdt', task: model.task, params: JSON.stringify(model.params), ...(mc ? { classes: JSON.stringify(mc.classes) } : {}), ...metadata },
  });
}
