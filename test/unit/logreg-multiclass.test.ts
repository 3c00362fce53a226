import { seededRandom, type ClassList, type Table } from '../../activities/ml/dataset';
import { featureMatrix } from '../../activities/ml/features';
import { exportLogregOnnx, predictLogreg, trainLogreg, type LogregModel } from '../../activities/ml/logreg';
import { createSession, feedsFor } from '../../activities/training/scoring';

const ZONES = 8;
const NUMERIC = ['x1', 'x2', 'x3'];

/**
 * A k-class table: class scores linear in three numeric features plus a per-zone shift (the
 * categorical effect), the class drawn from their softmax. The coefficients depend only on k, so
 * tables with different seeds come from the same world; rows are the seed's.
 */
function multiclassTable(rows: number, seed: number, classes: ClassList, opts: { unseen?: boolean } = {}): Table {
  const k = classes.length;
  const world = seededRandom(1000 + k);
  const coef = Array.from({ length: k }, () => NUMERIC.map(() => world() * 3 - 1.5));
  const shift = Array.from({ length: ZONES }, () => Array.from({ length: k }, () => world() * 4 - 2));
  const r = seededRandom(seed);
  const numeric = Object.fromEntries(NUMERIC.map((name) => [name, new Float32Array(rows)]));
  const zone: string[] = [];
  const label = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const x = NUMERIC.map((name) => (numeric[name]![i] = r() * 4 - 2));
    const z = Math.floor(r() * ZONES);
    zone.push(opts.unseen && i % 40 === 0 ? 'Z_unseen' : `Z${z}`);
    const scores = coef.map((a, c) => a.reduce((s, w, j) => s + w * x[j]!, 0) + shift[z]![c]!);
    const max = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - max));
    let u = r() * e.reduce((s, v) => s + v, 0);
    let c = 0;
    while (c < k - 1 && (u -= e[c]!) > 0) c++;
    label[i] = c;
    if (i % 41 === 0) numeric.x1![i] = NaN;
  }
  return {
    rows,
    features: [...NUMERIC.map((name) => ({ name, kind: 'numeric' as const })), { name: 'zone', kind: 'categorical' }],
    numeric,
    categorical: { zone },
    label,
    task: 'multiclass',
    classes,
  };
}

function classShares(t: Table, k: number): number[] {
  const n = new Array<number>(k).fill(0);
  for (let i = 0; i < t.rows; i++) n[t.label[i]!]!++;
  return n.map((v) => v / t.rows);
}

function argmax(p: ArrayLike<number>, at: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (p[at + c]! > p[at + best]!) best = c;
  return best;
}

/** Accuracy and mean log loss of n×k probabilities. */
function quality(probs: Float64Array, t: Table, k: number): { accuracy: number; logLoss: number } {
  let right = 0;
  let loss = 0;
  for (let i = 0; i < t.rows; i++) {
    if (argmax(probs, i * k, k) === t.label[i]) right++;
    loss -= Math.log(probs[i * k + t.label[i]!]!);
  }
  return { accuracy: right / t.rows, logLoss: loss / t.rows };
}

async function scoreOnnx(onnx: Uint8Array, t: Table): Promise<{ probabilities: Float32Array; label: unknown[]; names: readonly string[] }> {
  const session = await createSession(onnx);
  try {
    const out = await session.run(feedsFor(t, t.features, 0, t.rows));
    return { probabilities: out.probabilities!.data as Float32Array, label: Array.from(out.label!.data as ArrayLike<unknown>), names: session.outputNames };
  } finally {
    await session.release();
  }
}

describe.each([
  { name: 'string classes', classes: ['bus', 'car', 'train'] as ClassList },
  { name: 'negative and positive integer classes', classes: [-3, -1, 2, 7] as ClassList },
])('multinomial logistic regression, $name', ({ classes }) => {
  const k = classes.length;
  const train = multiclassTable(20_000, 1, classes);
  const holdout = multiclassTable(4_000, 2, classes, { unseen: true });
  let model: LogregModel;
  beforeAll(() => {
    model = trainLogreg(train);
  });

  test('beats the majority class and the prior, converging within maxIterations', () => {
    expect(model.task).toBe('multiclass');
    expect(model.iterations).toBeLessThan(model.params.maxIterations);
    expect(model.classWeights).toHaveLength(k);
    // Three numeric columns and one per class for the categorical feature.
    expect(model.classWeights![0]).toHaveLength(NUMERIC.length + k);
    const prior = classShares(train, k);
    const majority = prior.indexOf(Math.max(...prior));
    const majorityRate = classShares(holdout, k)[majority]!;
    let priorLoss = 0;
    for (let i = 0; i < holdout.rows; i++) priorLoss -= Math.log(prior[holdout.label[i]!]!);
    priorLoss /= holdout.rows;
    const probs = predictLogreg(model, holdout);
    expect(probs).toHaveLength(holdout.rows * k);
    const { accuracy, logLoss } = quality(probs, holdout, k);
    expect(accuracy).toBeGreaterThan(majorityRate + 0.15);
    expect(logLoss).toBeLessThan(0.8 * priorLoss);
  });

  test('its ONNX graph gives the trainer’s probabilities and the argmax class as the data spells it', async () => {
    const own = predictLogreg(model, holdout);
    const { probabilities, label, names } = await scoreOnnx(exportLogregOnnx(model), holdout);
    expect([...names].sort()).toEqual(['label', 'probabilities']);
    expect(probabilities).toHaveLength(holdout.rows * k);
    let worst = 0;
    let worstSum = 0;
    for (let i = 0; i < holdout.rows; i++) {
      let sum = 0;
      for (let c = 0; c < k; c++) {
        worst = Math.max(worst, Math.abs(probabilities[i * k + c]! - own[i * k + c]!));
        sum += probabilities[i * k + c]!;
      }
      worstSum = Math.max(worstSum, Math.abs(sum - 1));
    }
    expect(worst).toBeLessThan(1e-5);
    expect(worstSum).toBeLessThan(1e-5);
    const expected = Array.from({ length: holdout.rows }, (_, i) => classes[argmax(probabilities, i * k, k)]);
    if (typeof classes[0] === 'number') {
      // int64 comes back as BigInt; the negative classes must survive the initializer's varints.
      expect(label.every((v) => typeof v === 'bigint')).toBe(true);
      expect(label.map(Number)).toEqual(expected);
      expect(new Set(label.map(Number))).toEqual(new Set<number | string>(classes));
    } else {
      expect(label).toEqual(expected);
    }
  });

  test('a category unseen in training is encoded as the class prior, in the trainer and the graph', async () => {
    const prior = classShares(train, k);
    const zone = model.encodings.filter((e) => e.feature === 'zone');
    expect(zone.map((e) => e.unknown)).toEqual(prior.map((p) => Math.fround(Math.log(p))));
    const unseen: Table = { ...holdout, rows: 3, numeric: Object.fromEntries(NUMERIC.map((n) => [n, holdout.numeric[n]!.slice(0, 3)])), categorical: { zone: ['never', 'seen', 'before'] }, label: holdout.label.slice(0, 3) };
    const cols = featureMatrix(unseen, unseen.features, model.encodings);
    for (let c = 0; c < k; c++) expect(Array.from(cols[NUMERIC.length + c]!)).toEqual([0, 1, 2].map(() => Math.fround(Math.log(prior[c]!))));
    const own = predictLogreg(model, unseen);
    const { probabilities } = await scoreOnnx(exportLogregOnnx(model), unseen);
    for (let i = 0; i < 3 * k; i++) expect(Math.abs(probabilities[i]! - own[i]!)).toBeLessThan(1e-5);
  });

  test('same data, same bytes; other data, other bytes', () => {
    const a = exportLogregOnnx(model);
    expect(Buffer.compare(exportLogregOnnx(trainLogreg(multiclassTable(20_000, 1, classes))), a)).toBe(0);
    expect(Buffer.compare(exportLogregOnnx(trainLogreg(multiclassTable(20_000, 3, classes))), a)).not.toBe(0);
  });
});

test('a multiclass table without its classes, or with a label outside them, is refused', () => {
  const t = multiclassTable(100, 1, ['a', 'b', 'c']);
  expect(() => trainLogreg({ ...t, classes: undefined })).toThrow(/classes/);
  const label = t.label.slice() as Int32Array;
  label[5] = 3;
  expect(() => trainLogreg({ ...t, label })).toThrow(/row 5: label 3/);
});
