import { seededRandom, type Table } from '../../activities/ml/dataset';
import { syntheticTable } from './synthetic';

/**
 * A nonlinear regression target around `offset` (a threshold, a periodic effect, a categorical
 * effect, an interaction) plus Gaussian-ish noise: what trees fit and a line only partly does.
 */
export function syntheticRegression(rows: number, seed: number, opts: { offset?: number; noise?: number } = {}): Table {
  const r = seededRandom(seed);
  const x1 = new Float32Array(rows);
  const x2 = new Float32Array(rows);
  const cat: string[] = [];
  const label = new Float64Array(rows);
  const noise = opts.noise ?? 0.5;
  for (let i = 0; i < rows; i++) {
    x1[i] = r() * 10 - 5;
    x2[i] = r() * 24;
    const c = Math.floor(r() * 8);
    cat.push(`C${c}`);
    const gauss = (r() + r() + r() - 1.5) * 2;
    label[i] = (opts.offset ?? 0) + 10 * ((x1[i]! > 1 ? 2 : -1) + 3 * Math.sin(x2[i]! / 4) + (c % 3) + 0.2 * x1[i]! * (x2[i]! > 12 ? 1 : -1)) + noise * 10 * gauss;
  }
  return syntheticTable(x1, x2, cat, label, 'regression');
}
