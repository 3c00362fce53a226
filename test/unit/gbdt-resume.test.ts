import type { Table } from '../../activities/ml/dataset';
import { exportGbdtOnnx, trainGbdt, type GbdtCheckpoint } from '../../activities/ml/gbdt';
import { synthetic } from '../helpers/synthetic';

const params = { rounds: 12, maxDepth: 4, learningRate: 0.3, subsample: 0.8, seed: 5 };

class Interrupted extends Error {}

/** Trains until `round`, then stops the run (as a crash would) and returns its checkpoint as JSON. */
function checkpointAt(data: Table, p: typeof params, round: number): GbdtCheckpoint {
  let saved: string | undefined;
  const run = () =>
    trainGbdt(data, p, {
      onRound: ({ round: r, checkpoint }) => {
        if (r < round) return;
        saved = JSON.stringify(checkpoint());
        throw new Interrupted();
      },
    });
  expect(run).toThrow(Interrupted);
  return JSON.parse(saved!) as GbdtCheckpoint;
}

test('a subsampled run stopped at round 5 and resumed from its JSON checkpoint builds exactly the trees of an uninterrupted run', () => {
  const data = synthetic(4000, 21, { missing: true });
  const full = trainGbdt(data, params);
  const saved = checkpointAt(data, params, 5);
  expect(saved.round).toBe(5);
  expect(saved.trees).toEqual(full.trees.slice(0, 5));

  const rounds: number[] = [];
  const resumed = trainGbdt(data, params, { resumeFrom: saved, onRound: ({ round }) => rounds.push(round) });
  expect(rounds).toEqual([6, 7, 8, 9, 10, 11, 12]);
  expect(resumed.baseScore).toBe(full.baseScore);
  expect(resumed.trees).toEqual(full.trees);
  expect(exportGbdtOnnx(resumed).equals(exportGbdtOnnx(full))).toBe(true);

  // A checkpoint of a finished run resumes to the same model without training another round.
  const done = JSON.parse(JSON.stringify({ round: 12, baseScore: full.baseScore, encodings: full.encodings, trees: full.trees })) as GbdtCheckpoint;
  const again = trainGbdt(data, params, { resumeFrom: done, onRound: () => rounds.push(-1) });
  expect(rounds).not.toContain(-1);
  expect(exportGbdtOnnx(again).equals(exportGbdtOnnx(full))).toBe(true);
});

test('a checkpoint that does not fit the data or the run is refused', () => {
  const data = synthetic(2000, 3, { missing: true });
  const saved = checkpointAt(data, params, 6);
  // Other categories (an extra one) → other encodings.
  expect(() => trainGbdt(synthetic(2000, 3, { missing: true, unseen: true }), params, { resumeFrom: saved })).toThrow(/categorical encodings differ/);
  expect(() => trainGbdt(data, { ...params, rounds: 4 }, { resumeFrom: saved })).toThrow(/checkpoint at round 6 .*does not fit a 4-round run/);
  expect(() => trainGbdt(data, params, { resumeFrom: { ...saved, round: 7 } })).toThrow(/does not fit/);
  expect(() => trainGbdt(data, params, { resumeFrom: { ...saved, baseScore: saved.baseScore + 0.25 } })).toThrow(/base score/);
  const moved = structuredClone(saved);
  const split = moved.trees[2]!.feature.findIndex((f) => f >= 0);
  moved.trees[2]!.threshold[split] = moved.trees[2]!.threshold[split]! + 1e-3;
  expect(() => trainGbdt(data, params, { resumeFrom: moved })).toThrow(/tree 2 splits feature \d+ at .* not one of its bin edges/);
});
