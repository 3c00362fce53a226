import type { TaskKind, TimeTransform } from '../../workflows/contracts/training-spec';

/** A multiclass task's classes: strings (sorted by code point) or integers (ascending). */
export type ClassList = string[] | number[];

/** An in-memory, columnar training table: the trainers' input once data has been prepared. */
export interface FeatureSpec {
  name: string;
  kind: 'numeric' | 'categorical';
  /** A numeric feature the model derives from the timestamp `column` (its input, epoch seconds); trainers see the derived values. */
  column?: string;
  transform?: TimeTransform;
}

export interface Table {
  rows: number;
  features: FeatureSpec[];
  /** float32 values (NaN = missing) for numeric features. */
  numeric: Record<string, Float32Array>;
  categorical: Record<string, string[]>;
  /** Epoch seconds of the timestamp columns derived features come from: what the model takes. */
  timestamps?: Record<string, BigInt64Array>;
  /** 0/1 (Uint8Array) for a binary task, the target (Float64Array) for a regression, the class's index in `classes` (Int32Array) for a multiclass task. */
  label: Uint8Array | Float64Array | Int32Array;
  /** Absent: binary. */
  task?: TaskKind;
  /** Multiclass: the classes in model order (label i is classes[i]), as the data has them: strings, or integers. */
  classes?: ClassList;
}

/**
 * A categorical encoding: category → float, with a value for categories never seen in training.
 * Exported into the ONNX graph as an `ai.onnx.ml` LabelEncoder, so serving encodes as training did.
 */
export interface CategoricalEncoding {
  feature: string;
  keys: string[];
  values: number[];
  unknown: number;
}

/** Deterministic PRNG (mulberry32): same seed, same model. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Category statistics: count and label sum (positives, for 0/1 labels) per category, in first-seen order. */
export function categoryStats(values: string[], label: ArrayLike<number>): Map<string, { n: number; pos: number }> {
  const stats = new Map<string, { n: number; pos: number }>();
  for (let i = 0; i < values.length; i++) {
    const key = values[i]!;
    let s = stats.get(key);
    if (!s) stats.set(key, (s = { n: 0, pos: 0 }));
    s.n++;
    s.pos += label[i]!;
  }
  return stats;
}

/** Applies an encoding in float32, exactly as the ONNX LabelEncoder will. */
export function encodeColumn(values: string[], enc: CategoricalEncoding): Float32Array {
  const lookup = new Map(enc.keys.map((k, i) => [k, enc.values[i]!]));
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = lookup.get(values[i]!) ?? enc.unknown;
  return out;
}
