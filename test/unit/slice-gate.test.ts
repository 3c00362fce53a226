import { sliceChecks } from '../../activities/training/gates';

/** The slice gate judges the slices it has evidence for, and fails when it has none. */

const gates = { minSliceAuc: 0.6, minSliceRows: 500 };

test('slices with enough rows and both classes are gated; smaller ones only reported', () => {
  const checks = sliceChecks(
    [
      { slice: 'origin=ATL', rows: 900, auc: 0.7 },
      { slice: 'origin=ORD', rows: 800, auc: 0.55 },
      { slice: 'origin=BOS', rows: 100, auc: 0.2 },
      { slice: 'hour≤5', rows: 2000, auc: null },
    ],
    gates,
  );
  expect(checks).toEqual([
    { gate: 'slice-auc origin=ATL', ok: true, value: 0.7, limit: 0.6 },
    { gate: 'slice-auc origin=ORD', ok: false, value: 0.55, limit: 0.6 },
  ]);
});

test('a slice gate with no slice to judge fails instead of passing', () => {
  expect(sliceChecks([{ slice: 'origin=BOS', rows: 100, auc: 0.9 }], gates)).toEqual([{ gate: 'slice-auc', ok: false, value: 'no slice with 500 test rows and both classes (of 1)', limit: 0.6 }]);
  expect(sliceChecks([], gates)[0]!.ok).toBe(false);
  expect(sliceChecks([{ slice: 'origin=BOS', rows: 100, auc: 0.9 }], { minSliceRows: 500 })).toEqual([]);
});
