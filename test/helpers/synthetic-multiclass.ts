import { seededRandom, type ClassList, type Table } from '../../activities/ml/dataset';
import { syntheticTable } from './synthetic';

/**
 * A k-class target from softmax scores that trees fit and a linear model only partly does: a
 * threshold on x1, a periodic effect of the hour, a categorical effect and noise. The classes
 * are `classes` (strings or integers), drawn by their probabilities.
 */
export function syntheticMulticlass(rows: number, seed: number, classes: ClassList = ['bus', 'car', 'train']): Table {
  const r = seededRandom(seed);
  const k = classes.length;
  const x1 = new Float32Array(rows);
  const hour = new Float32Array(rows);
  const origin: string[] = [];
  const label = new Int32Array(rows);
  const z = new Array<number>(k);
  for (let i = 0; i < rows; i++) {
    x1[i] = r() * 10 - 5;
    hour[i] = Math.floor(r() * 24);
    const c = Math.floor(r() * 6);
    origin.push(`O${c}`);
    for (let j = 0; j < k; j++) z[j] = 2 * (x1[i]! > j - 1 ? 1 : -1) * (j % 2 ? 1 : -1) + 1.5 * Math.sin((hour[i]! + 6 * j) / 4) + (c % k === j ? 1.5 : 0);
    const max = Math.max(...z);
    const e = z.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    let u = r() * sum;
    let y = 0;
    while (y < k - 1 && (u -= e[y]!) > 0) y++;
    label[i] = y;
  }
  return syntheticTable(x1, hour, origin, label, 'multiclass', classes);
}

/** The features of the travel-mode CSVs the multiclass tests bring as a user's data: syntheticMulticlass's x1 is the distance. */
export const MODE_FEATURES = [
  { name: 'distance_km', kind: 'numeric' as const },
  { name: 'hour', kind: 'numeric' as const },
  { name: 'origin', kind: 'categorical' as const },
];

/** A syntheticMulticlass table as such a CSV, each row's mode from `mode(i)`. */
export function modesCsv(t: Table, mode: (i: number) => string): string {
  const lines = ['distance_km,hour,origin,mode'];
  for (let i = 0; i < t.rows; i++) lines.push(`${t.numeric.x1![i]},${t.numeric.hour![i]},${t.categorical.origin![i]},${mode(i)}`);
  return lines.join('\n') + '\n';
}
