import { serializeModel } from '../../infra/onnx/model';
import { categoryStats, seededRandom, type CategoricalEncoding, type FeatureSpec, type Table } from './dataset';
import { featureMatrix, preprocessingNodes, rawFeatureInputs } from './features';
import { sigmoid } from './metrics';

/**
 * Histogram gradient-boosted trees for binary classification (log loss), depth-wise growth.
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

interface Tree {
  /** Per node: feature index, or -1 for a leaf. */
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  value: number[];
}

export interface GbdtModel {
  kind: 'gbdt';
  params: GbdtParams;
  features: FeatureSpec[];
  encodings: CategoricalEncoding[];
  baseScore: number;
  trees: Tree[];
}

/** Category → rank by positive rate, so ordinal splits on the code separate high from low rates. */
function rankEncoding(feature: string, values: string[], label: Uint8Array): CategoricalEncoding {
  const stats = [...categoryStats(values, label).entries()];
  stats.sort((a, b) => a[1].pos / a[1].n - b[1].pos / b[1].n || (a[0] < b[0] ? -1 : 1));
  return { feature, keys: stats.map(([k]) => k), values: stats.map((_, i) => i), unknown: -1 };
}


/** Upper edges of up to maxBins bins: distinct float32 values at quantiles; NaN goes to bin 0. */
function binEdges(col: Float32Array, maxBins: number): Float32Array {
  const finite = col.filter((v) => !Number.isNaN(v)).sort();
  const distinct: number[] = [];
  for (let i = 0; i < finite.length; i++) if (i === 0 || finite[i] !== finite[i - 1]) distinct.push(finite[i]!);
  if (distinct.length <= maxBins) return Float32Array.from(distinct);
  const edges: number[] = [];
  for (let b = 1; b <= maxBins; b++) {
    const v = finite[Math.min(finite.length - 1, Math.floor((b * finite.length) / maxBins) - 1)]!;
    if (edges.length === 0 || v > edges[edges.length - 1]!) edges.push(v);
  }
  return Float32Array.from(edges);
}

function binColumn(col: Float32Array, edges: Float32Array): Uint8Array {
  const out = new Uint8Array(col.length);
  for (let i = 0; i < col.length; i++) {
    const v = col[i]!;
    if (Number.isNaN(v)) continue;
    let lo = 0;
    let hi = edges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (v <= edges[mid]!) hi = mid;
      else lo = mid + 1;
    }
    out[i] = lo;
  }
  return out;
}

export interface TrainProgress {
  round: number;
  rounds: number;
}

export function trainGbdt(table: Table, params: Partial<GbdtParams> = {}, onRound?: (p: TrainProgress) => void): GbdtModel {
  const p: GbdtParams = { ...DEFAULT_GBDT, ...params };
  if (p.maxBins > 255) throw new Error('maxBins must be at most 255');
  const features = table.features;
  const encodings = features.filter((f) => f.kind === 'categorical').map((f) => rankEncoding(f.name, table.categorical[f.name]!, table.label));
  const cols = featureMatrix(table, features, encodings);
  const edges = cols.map((c) => binEdges(c, p.maxBins));
  const bins = cols.map((c, j) => binColumn(c, edges[j]!));
  const n = table.rows;
  const y = table.label;
  let pos = 0;
  for (let i = 0; i < n; i++) pos += y[i]!;
  const rate = Math.min(1 - 1e-6, Math.max(1e-6, pos / n));
  const baseScore = Math.fround(Math.log(rate / (1 - rate)));
  const margin = new Float64Array(n).fill(baseScore);
  const g = new Float64Array(n);
  const h = new Float64Array(n);
  const rand = seededRandom(p.seed);
  const trees: Tree[] = [];
  const nBins = Math.max(1, ...edges.map((e) => e.length));
  const histG = new Float64Array(nBins);
  const histH = new Float64Array(nBins);

  for (let round = 0; round < p.rounds; round++) {
    for (let i = 0; i < n; i++) {
      const pr = sigmoid(margin[i]!);
      g[i] = pr - y[i]!;
      h[i] = Math.max(pr * (1 - pr), 1e-16);
    }
    let rows: Uint32Array;
    if (p.subsample < 1) {
      const picked: number[] = [];
      for (let i = 0; i < n; i++) if (rand() < p.subsample) picked.push(i);
      rows = Uint32Array.from(picked);
    } else {
      rows = Uint32Array.from({ length: n }, (_, i) => i);
    }
    const tree: Tree = { feature: [], threshold: [], left: [], right: [], value: [] };
    const splitBin: number[] = [];
    // Depth-wise growth over a queue of (node id, rows, depth).
    const queue: Array<{ id: number; rows: Uint32Array; depth: number }> = [];
    const newNode = () => {
      tree.feature.push(-1);
      tree.threshold.push(0);
      tree.left.push(-1);
      tree.right.push(-1);
      tree.value.push(0);
      splitBin.push(-1);
      return tree.feature.length - 1;
    };
    queue.push({ id: newNode(), rows, depth: 0 });
    while (queue.length) {
      const node = queue.shift()!;
      let G = 0;
      let H = 0;
      for (const i of node.rows) {
        G += g[i]!;
        H += h[i]!;
      }
      let best = { gain: 1e-12, feature: -1, bin: -1 };
      if (node.depth < p.maxDepth && node.rows.length >= 2) {
        const parent = (G * G) / (H + p.lambda);
        for (let j = 0; j < bins.length; j++) {
          const col = bins[j]!;
          const k = edges[j]!.length;
          if (k < 2) continue;
          histG.fill(0, 0, k);
          histH.fill(0, 0, k);
          for (const i of node.rows) {
            const b = col[i]!;
            histG[b] = histG[b]! + g[i]!;
            histH[b] = histH[b]! + h[i]!;
          }
          let GL = 0;
          let HL = 0;
          for (let b = 0; b < k - 1; b++) {
            GL += histG[b]!;
            HL += histH[b]!;
            const GR = G - GL;
            const HR = H - HL;
            if (HL < p.minChildWeight || HR < p.minChildWeight) continue;
            const gain = (GL * GL) / (HL + p.lambda) + (GR * GR) / (HR + p.lambda) - parent;
            if (gain > best.gain) best = { gain, feature: j, bin: b };
          }
        }
      }
      if (best.feature < 0) {
        const w = Math.fround((-G / (H + p.lambda)) * p.learningRate);
        tree.value[node.id] = w;
        continue;
      }
      const col = bins[best.feature]!;
      const leftRows: number[] = [];
      const rightRows: number[] = [];
      for (const i of node.rows) (col[i]! <= best.bin ? leftRows : rightRows).push(i);
      tree.feature[node.id] = best.feature;
      tree.threshold[node.id] = edges[best.feature]![best.bin]!;
      splitBin[node.id] = best.bin;
      const l = newNode();
      const r = newNode();
      tree.left[node.id] = l;
      tree.right[node.id] = r;
      queue.push({ id: l, rows: Uint32Array.from(leftRows), depth: node.depth + 1 });
      queue.push({ id: r, rows: Uint32Array.from(rightRows), depth: node.depth + 1 });
    }
    trees.push(tree);
    // Update every row's margin (subsampled rows were not partitioned, so traverse).
    for (let i = 0; i < n; i++) {
      let id = 0;
      while (tree.feature[id]! >= 0) id = bins[tree.feature[id]!]![i]! <= splitBin[id]! ? tree.left[id]! : tree.right[id]!;
      margin[i] = margin[i]! + tree.value[id]!;
    }
    onRound?.({ round: round + 1, rounds: p.rounds });
  }
  return { kind: 'gbdt', params: p, features, encodings, baseScore, trees };
}

/** The model's probabilities on raw features, computed the way the ONNX graph does. */
export function predictGbdt(model: GbdtModel, table: Table): Float64Array {
  const cols = featureMatrix(table, model.features, model.encodings);
  const out = new Float64Array(table.rows);
  for (let i = 0; i < table.rows; i++) {
    let m = model.baseScore;
    for (const t of model.trees) {
      let id = 0;
      while (t.feature[id]! >= 0) {
        const v = cols[t.feature[id]!]![i]!;
        id = Number.isNaN(v) || v <= t.threshold[id]! ? t.left[id]! : t.right[id]!;
      }
      m += t.value[id]!;
    }
    out[i] = sigmoid(m);
  }
  return out;
}



export function exportGbdtOnnx(model: GbdtModel, metadata: Record<string, string> = {}): Buffer {
  const ids = { tree: [] as number[], node: [] as number[], feature: [] as number[], mode: [] as string[], value: [] as number[], t: [] as number[], f: [] as number[], missing: [] as number[] };
  const target = { tree: [] as number[], node: [] as number[], weight: [] as number[] };
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
      }
    }
  });
  return serializeModel({
    graphName: 'gbdt_binary',
    inputs: rawFeatureInputs(model.features),
    outputs: [{ name: 'probability', type: 'FLOAT', shape: ['batch', 1] }],
    nodes: [
      ...preprocessingNodes(model.features, model.encodings),
      {
        opType: 'TreeEnsembleRegressor',
        domain: 'ai.onnx.ml',
        inputs: ['features'],
        outputs: ['logit'],
        name: 'trees',
        attributes: {
          n_targets: { kind: 'int', value: 1 },
          aggregate_function: { kind: 'string', value: 'SUM' },
          base_values: { kind: 'floats', value: [model.baseScore] },
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
          target_ids: { kind: 'ints', value: target.tree.map(() => 0) },
          target_weights: { kind: 'floats', value: target.weight },
        },
      },
      { opType: 'Sigmoid', inputs: ['logit'], outputs: ['probability'], name: 'sigmoid' },
    ],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
    metadata: { trainer: 'gbdt', params: JSON.stringify(model.params), ...metadata },
  });
}
