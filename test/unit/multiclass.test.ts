import { exportGbdtOnnx, predictGbdt, trainGbdt, type GbdtCheckpoint } from '../../activities/ml/gbdt';
import { multiclassMetrics } from '../../activities/ml/metrics';
import type { Table } from '../../activities/ml/dataset';
import { multiclassChecks, signatureDiff, type Gates } from '../../activities/training/gates';
import type { MulticlassEvaluation } from '../../activities/training/evaluate';
import { createSession, feedsFor, scoreTable, signatureOf, signatureProblems } from '../../activities/training/scoring';
import { trainingSpec } from '../../workflows/contracts/training-spec';
import { syntheticMulticlass } from '../helpers/synthetic-multiclass';

const PARAMS = { rounds: 30, maxDepth: 4, learningRate: 0.3 };

async function run(onnx: Uint8Array, table: Table): Promise<{ probs: Float32Array; labels: unknown[]; problems: string[]; outputs: readonly string[] }> {
  const session = await createSession(onnx);
  try {
    const out = await session.run(feedsFor(table, table.features, 0, table.rows));
    return { probs: await scoreTable(session, table, table.features), labels: Array.from(out.label!.data as ArrayLike<unknown>), problems: signatureProblems(session, table.features, 'multiclass', table.classes), outputs: session.outputNames };
  } finally {
    await session.release();
  }
}

function priorLogLoss(train: Table, test: Table): number {
  const k = train.classes!.length;
  const shares = new Array<number>(k).fill(0);
  for (const y of train.label) shares[y]! += 1 / train.rows;
  return multiclassMetrics(Float64Array.from({ length: test.rows * k }, (_, j) => shares[j % k]!), test.label, k).logLoss;
}

test('multiclass metrics equal their definitions (sklearn log_loss, accuracy_score, f1_score average=macro, recall per class, confusion_matrix)', () => {
  // Rows: true 0 → 0, true 0 → 1, true 1 → 1, true 2 → 1; class 2 is never predicted.
  const probs = [0.7, 0.2, 0.1, 0.3, 0.6, 0.1, 0.1, 0.8, 0.1, 0.2, 0.5, 0.3];
  const m = multiclassMetrics(probs, [0, 0, 1, 2], 3);
  expect(m.confusion).toEqual([
    [1, 1, 0],
    [0, 1, 0],
    [0, 1, 0],
  ]);
  expect(m.accuracy).toBe(0.5);
  expect(m.logLoss).toBeCloseTo(-(Math.log(0.7) + Math.log(0.3) + Math.log(0.8) + Math.log(0.3)) / 4, 12);
  // F1: class 0 2·1/(2+1) = 2/3, class 1 2·1/(1+3) = 1/2, class 2 0 (support 1, never predicted).
  expect(m.macroF1).toBeCloseTo((2 / 3 + 1 / 2 + 0) / 3, 12);
  expect(m.perClass.map((c) => c.recall)).toEqual([0.5, 1, 0]);
  expect(m.perClass.map((c) => c.precision)).toEqual([1, 1 / 3, null]);
  // A class that neither occurs nor is predicted is left out of the macro average (sklearn's labels = those present).
  expect(multiclassMetrics([0.9, 0.1, 0, 0.2, 0.8, 0], [0, 1], 3).macroF1).toBe(1);
  expect(() => multiclassMetrics([0.5, 0.5], [0, 1], 2)).toThrow(/2 probabilities for 2 rows of 2 classes/);
});

test('GBDT softmax: beats the class prior, its ONNX graph gives probabilities equal to the trainer and the class itself, same bytes for the same seed', async () => {
  const train = syntheticMulticlass(6000, 1);
  const test = syntheticMulticlass(2000, 2);
  const model = trainGbdt(train, PARAMS);
  expect(model.task).toBe('multiclass');
  // One tree per class per round.
  expect(model.trees).toHaveLength(PARAMS.rounds * 3);
  const own = predictGbdt(model, test);
  const m = multiclassMetrics(own, test.label, 3);
  expect(m.logLoss).toBeLessThan(0.85 * priorLogLoss(train, test));
  const onnx = exportGbdtOnnx(model);
  const { probs, labels, problems, outputs } = await run(onnx, test);
  expect(outputs).toEqual(['probabilities', 'label']);
  expect(problems).toEqual([]);
  let worst = 0;
  for (let i = 0; i < own.length; i++) worst = Math.max(worst, Math.abs(probs[i]! - own[i]!));
  expect(worst).toBeLessThan(1e-5);
  // `label` is the argmax class as the data spells it.
  const argmax = (i: number) => [0, 1, 2].reduce((b, c) => (probs[i * 3 + c]! > probs[i * 3 + b]! ? c : b), 0);
  expect(labels.slice(0, 200)).toEqual(Array.from({ length: 200 }, (_, i) => test.classes![argmax(i)]));
  expect(Buffer.compare(exportGbdtOnnx(trainGbdt(train, PARAMS)), onnx)).toBe(0);
});

test('GBDT softmax with integer classes: label is int64, and threads or a resumed checkpoint give the same model', async () => {
  const classes = [-1, 2, 7, 40];
  const train = syntheticMulticlass(5000, 3, classes);
  const test = syntheticMulticlass(500, 4, classes);
  const checkpoints: GbdtCheckpoint[] = [];
  const model = trainGbdt(train, PARAMS, { onRound: ({ round, checkpoint }) => round === 11 && checkpoints.push(checkpoint()) });
  expect(checkpoints[0]!.round).toBe(11);
  expect(checkpoints[0]!.trees).toHaveLength(44);
  const onnx = exportGbdtOnnx(model);
  expect(Buffer.compare(exportGbdtOnnx(trainGbdt(train, PARAMS, { threads: 3 })), onnx)).toBe(0);
  expect(Buffer.compare(exportGbdtOnnx(trainGbdt(train, PARAMS, { resumeFrom: JSON.parse(JSON.stringify(checkpoints[0])) as GbdtCheckpoint })), onnx)).toBe(0);
  // A checkpoint of another class count does not fit.
  expect(() => trainGbdt(syntheticMulticlass(5000, 3), PARAMS, { resumeFrom: checkpoints[0] })).toThrow(/does not fit|does not match/);
  const session = await createSession(onnx);
  try {
    const out = await session.run(feedsFor(test, test.features, 0, 50));
    expect(out.label!.type).toBe('int64');
    expect(Array.from(out.label!.data as BigInt64Array, Number).every((v) => classes.includes(v))).toBe(true);
    expect(out.probabilities!.dims).toEqual([50, 4]);
    // The contract check names a graph whose label is of the wrong type for the classes.
    expect(signatureProblems(session, test.features, 'multiclass', ['a', 'b', 'c', 'd'])).toEqual([expect.stringMatching(/output label is int64, expected string/)]);
    expect(signatureProblems(session, test.features, 'multiclass', [1, 2, 3])).toEqual([expect.stringMatching(/output probabilities has shape .*expected \[batch, 3\]/)]);
  } finally {
    await session.release();
  }
});

test('multiclass gates: the prior, the chosen metric against the baseline, and the optional floors', () => {
  const base = { task: 'multiclass', slices: [], parity: { maxAbsDiff: 0, rows: 1, scale: 1 }, prior: { logLoss: 1.0 }, baseline: { trainer: 'logreg', macroF1: 0.6, logLoss: 0.8, accuracy: 0.6 } } as const;
  const figures = (macroF1: number, logLoss: number) => ({ ...base, metrics: { ...multiclassMetrics([1, 0], [0], 2), macroF1, logLoss } }) as unknown as Pick<MulticlassEvaluation, 'task' | 'metrics' | 'slices' | 'parity' | 'baseline' | 'prior'>;
  const gates = { maxBaselineLoss: 0, minSliceRows: 1 } as Gates;
  const judge = (f: ReturnType<typeof figures>, g: Partial<Gates> = {}) => {
    const checks: Array<{ gate: string; ok: boolean }> = [];
    multiclassChecks(f, { ...gates, ...g }, (gate, ok) => checks.push({ gate, ok }));
    return checks;
  };
  expect(judge(figures(0.7, 0.7)).every((c) => c.ok)).toBe(true);
  // Worse than the class prior: nothing learned.
  expect(judge(figures(0.7, 1.2)).find((c) => c.gate === 'vs-prior log-loss')!.ok).toBe(false);
  // Below multinomial logistic regression on macro-F1 (the default metric) …
  expect(judge(figures(0.55, 0.7)).find((c) => c.gate === 'vs-baseline logreg macroF1')!.ok).toBe(false);
  // … or on log loss when the spec names it.
  expect(judge(figures(0.7, 0.85), { multiclassMetric: 'logLoss' }).find((c) => c.gate === 'vs-baseline logreg logLoss')!.ok).toBe(false);
  expect(judge(figures(0.7, 0.85), { multiclassMetric: 'logLoss', maxBaselineLoss: 0.1 }).every((c) => c.ok)).toBe(true);
  expect(judge(figures(0.7, 0.7), { minMacroF1: 0.75 }).find((c) => c.gate === 'min-macro-f1')!.ok).toBe(false);
  expect(judge(figures(0.7, 0.7), { maxLogLoss: 0.5 }).find((c) => c.gate === 'max-log-loss')!.ok).toBe(false);
  expect(judge(figures(NaN, 0.7)).find((c) => c.gate === 'vs-baseline logreg macroF1')!.ok).toBe(false);
});

test('a multiclass signature carries its classes: a change of classes is a change of signature', () => {
  const features = [{ name: 'x', kind: 'numeric' as const }];
  const before = signatureOf(features, 'multiclass', ['a', 'b']).outputs;
  expect(before).toEqual([
    { name: 'probabilities', datatype: 'FP32', shape: [-1, 2], classes: ['a', 'b'] },
    { name: 'label', datatype: 'BYTES', shape: [-1, 1] },
  ]);
  expect(signatureOf(features, 'multiclass', [3, 4]).outputs[1]).toEqual({ name: 'label', datatype: 'INT64', shape: [-1, 1] });
  expect(signatureDiff(before, signatureOf(features, 'multiclass', ['a', 'b']).outputs)).toEqual([]);
  expect(signatureDiff(before, signatureOf(features, 'multiclass', ['a', 'c']).outputs)).toEqual(['probabilities classes ["a","b"]→["a","c"]']);
  expect(signatureDiff(signatureOf(features, 'binary').outputs, before)).toEqual(['-probability FP32', '+probabilities FP32', '+label BYTES']);
});

test('the spec takes kind multiclass and its gates, and refuses them for the other kinds, naming the field', () => {
  const spec = { model: 'm', dataset: { uris: ['file:///d.csv'] }, features: [{ name: 'x', kind: 'numeric' }] };
  const ok = trainingSpec.safeParse({ ...spec, label: { column: 'mode', kind: 'multiclass' }, gates: { minMacroF1: 0.5, multiclassMetric: 'logLoss' } });
  expect(ok.success).toBe(true);
  const wrong = trainingSpec.safeParse({ ...spec, label: { column: 'mode', kind: 'regression' }, gates: { minMacroF1: 0.5 } });
  expect(wrong.success).toBe(false);
  expect(wrong.error!.issues[0]).toMatchObject({ path: ['gates', 'minMacroF1'], message: expect.stringMatching(/gates a multiclass task; this task is regression/) });
  const threshold = trainingSpec.safeParse({ ...spec, label: { column: 'mode', kind: 'multiclass', greaterThan: 2 } });
  expect(threshold.error!.issues[0]).toMatchObject({ path: ['label', 'greaterThan'] });
  const auc = trainingSpec.safeParse({ ...spec, label: { column: 'mode', kind: 'multiclass' }, gates: { minSliceAuc: 0.6 } });
  expect(auc.error!.issues[0]).toMatchObject({ path: ['gates', 'minSliceAuc'], message: expect.stringMatching(/not a gate of a multiclass task/) });
});
