import { seededRandom, type Table } from '../../activities/ml/dataset';

/** Nonlinear synthetic data: an interaction, a threshold and a categorical effect, plus noise. */
export function synthetic(rows: number, seed: number, opts: { unseen?: boolean; missing?: boolean } = {}): Table {
  const r = seededRandom(seed);
  const x1 = new Float32Array(rows);
  const x2 = new Float32Array(rows);
  const cat: string[] = [];
  const label = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    x1[i] = r() * 10 - 5;
    x2[i] = r() * 24;
    const c = Math.floor(r() * 12);
    cat.push(opts.unseen && i % 50 === 0 ? 'ZZZ' : `C${c}`);
    const logit = (x1[i]! > 1 ? 1.5 : -0.5) + Math.sin(x2[i]! / 4) * 1.2 + (c % 3 === 0 ? 1 : -0.3) + 0.3 * x1[i]! * (x2[i]! > 12 ? 1 : -1);
    label[i] = r() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
    if (opts.missing && i % 37 === 0) x1[i] = NaN;
  }
  return syntheticTable(x1, x2, cat, label);
}

/** The synthetic generators' table: features x1, hour (numeric) and origin (categorical). */
export function syntheticTable(x1: Float32Array, hour: Float32Array, origin: string[], label: Table['label'], task?: Table['task'], classes?: Table['classes']): Table {
  return {
    rows: x1.length,
    features: [
      { name: 'x1', kind: 'numeric' },
      { name: 'hour', kind: 'numeric' },
      { name: 'origin', kind: 'categorical' },
    ],
    numeric: { x1, hour },
    categorical: { origin },
    label,
    ...(task ? { task } : {}),
    ...(classes ? { classes } : {}),
  };
}

