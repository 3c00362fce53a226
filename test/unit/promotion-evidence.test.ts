import type { CanaryFigures } from '../../activities/deployment';
import { shadowRequestId } from '../../infra/db/repositories';
import { promotionInput } from '../../workflows/promotion';
import { evidenceProblem } from '../../workflows/strategies/evidence';
import type { RolloutContext } from '../../workflows/strategies/types';

/** How a canary or shadow stage reads its figures: every missing figure fails by name, labels count once there. */

const ctx = (gates: Record<string, number> = {}) => ({ input: promotionInput.parse({ model: 'm', version: 2, gates }) }) as unknown as RolloutContext;
const base: CanaryFigures = { stableRows: 500, canaryRows: 500, stableP99Ms: 2, canaryP99Ms: 2, predictionPsi: 0.01, canaryErrors: 0 };

test('labels: judged once enough of the candidate rows have them; a worse log loss fails, with the figures', () => {
  const judge = { errors: true, latency: true, performance: true };
  expect(evidenceProblem(ctx(), { ...base, canaryLabeled: 49, stableLabeled: 49, canaryLogLoss: 0.9, stableLogLoss: 0.4 }, 60, judge)).toBeUndefined();
  expect(evidenceProblem(ctx(), { ...base, canaryLabeled: 50, stableLabeled: 60, canaryLogLoss: 0.41, stableLogLoss: 0.4 }, 60, judge)).toBeUndefined();
  expect(evidenceProblem(ctx(), { ...base, canaryLabeled: 50, stableLabeled: 60, canaryLogLoss: 0.45, stableLogLoss: 0.4 }, 60, judge)).toBe('log loss 0.4500 vs stable 0.4000 on labelled rows (+0.0500 > 0.02; 50 labelled)');
  expect(evidenceProblem(ctx(), { ...base, canaryLabeled: 50, stableLabeled: 0, canaryLogLoss: 0.45, stableLogLoss: null }, 60, judge)).toBe('no log-loss figure (50 labelled candidate rows, 0 stable)');
  expect(evidenceProblem(ctx(), base, 60, judge)).toBe('no labelled-row figure');
  // Off for stages started before the patch, and with minLabeledRows 0.
  expect(evidenceProblem(ctx(), { ...base, canaryLabeled: 50, stableLabeled: 60, canaryLogLoss: 0.9, stableLogLoss: 0.4 }, 60, { errors: true, latency: true })).toBeUndefined();
  expect(evidenceProblem(ctx({ minLabeledRows: 0 }), { ...base, canaryLabeled: 500, stableLabeled: 500, canaryLogLoss: 0.9, stableLogLoss: 0.4 }, 60, judge)).toBeUndefined();
});

test("a regression's labels are judged on RMSE relative to stable's, never on a log loss it does not have", () => {
  const judge = { errors: true, latency: true, performance: true };
  const reg = { ...base, task: 'regression' as const, canaryLabeled: 50, stableLabeled: 60 };
  expect(evidenceProblem(ctx(), { ...reg, canaryRmse: 10.4, stableRmse: 10 }, 60, judge)).toBeUndefined();
  expect(evidenceProblem(ctx(), { ...reg, canaryRmse: 10.6, stableRmse: 10 }, 60, judge)).toBe('RMSE 10.600 vs stable 10.000 on labelled rows (+6.0% > 5.0%; 50 labelled)');
  // Units do not matter: the same 6% rise in thousands fails alike, a log-loss figure does not stand in.
  expect(evidenceProblem(ctx(), { ...reg, canaryRmse: 10600, stableRmse: 10000 }, 60, judge)).toMatch(/^RMSE 10600 vs stable 10000 .*\+6\.0% > 5\.0%/);
  expect(evidenceProblem(ctx(), { ...reg, canaryLogLoss: 0.1, stableLogLoss: 0.1 }, 60, judge)).toBe('no RMSE figure (50 labelled candidate rows, 60 stable)');
  expect(evidenceProblem(ctx(), { ...reg, canaryRmse: 0.1, stableRmse: 0 }, 60, judge)).toMatch(/^RMSE 0\.10000 vs stable 0\.0000 .*\+Infinity%/);
  expect(evidenceProblem(ctx({ maxRmseIncrease: 0.1 }), { ...reg, canaryRmse: 10.6, stableRmse: 10 }, 60, judge)).toBeUndefined();
  expect(evidenceProblem(ctx(), { ...reg, canaryLabeled: 49, canaryRmse: 99, stableRmse: 10 }, 60, judge)).toBeUndefined();
});

test('thin or missing evidence fails by name before anything else is read', () => {
  expect(evidenceProblem(ctx(), { ...base, canaryRows: 3 }, 30, { errors: true, latency: true })).toBe('3 rows < 20 after 30s');
  expect(evidenceProblem(ctx(), { ...base, canaryP99Ms: null }, 30, { errors: true, latency: true })).toBe('no p99 latency figure');
  expect(evidenceProblem(ctx(), { ...base, predictionPsi: null }, 30, { errors: true, latency: false })).toBe('no prediction-shift figure (500 stable rows)');
  expect(evidenceProblem(ctx(), { ...base, canaryErrors: 2 }, 30, { errors: true, latency: false })).toBe('2 errors');
});

test("a shadow's row of a request is found from the request's id", () => {
  expect(shadowRequestId('abc')).toBe('abc:shadow');
  expect(shadowRequestId('abc#3')).toBe('abc:shadow#3');
});
