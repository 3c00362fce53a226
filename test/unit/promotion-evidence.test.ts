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
