import { exportGbdtOnnx, trainGbdt } from '../../activities/ml/gbdt';
import { gbdtHelperTasks, liveGbdtWorkers } from '../../activities/ml/gbdt-pool';
import { synthetic } from '../helpers/synthetic';

// Over 16 384 rows (one histogram block), so that the root and the first levels span several blocks.
const data = synthetic(50_000, 17, { missing: true });

async function noWorkersLeft(): Promise<number> {
  for (let i = 0; i < 100 && liveGbdtWorkers() > 0; i++) await new Promise((r) => setTimeout(r, 50));
  return liveGbdtWorkers();
}

test.each([{ subsample: 1 }, { subsample: 0.7 }])('1, 2 and 3 threads train the same model, byte for byte (subsample $subsample)', async ({ subsample }) => {
  // Enough rounds for the helpers to have booted (a tsx-loaded thread takes a while) and shared the work.
  const params = { rounds: 20, maxDepth: 5, learningRate: 0.3, subsample, seed: 9 };
  const helped = gbdtHelperTasks();
  const [one, two, three] = [1, 2, 3].map((threads) => trainGbdt(data, params, { threads }));
  // The helpers did share the work: else this would compare three single-threaded runs.
  expect(gbdtHelperTasks()).toBeGreaterThan(helped);
  expect(two!.trees).toEqual(one!.trees);
  expect(three!.trees).toEqual(one!.trees);
  const onnx = exportGbdtOnnx(one!);
  expect(exportGbdtOnnx(two!).equals(onnx)).toBe(true);
  expect(exportGbdtOnnx(three!).equals(onnx)).toBe(true);
  expect(await noWorkersLeft()).toBe(0);
}, 60_000);

test('helper threads run for the training only: stopped when it ends and when it fails', async () => {
  const during: number[] = [];
  trainGbdt(data, { rounds: 2, maxDepth: 3 }, { threads: 3, onRound: () => void during.push(liveGbdtWorkers()) });
  expect(during).toEqual([2, 2]);
  expect(await noWorkersLeft()).toBe(0);

  const failing = () =>
    trainGbdt(data, { rounds: 5, maxDepth: 3 }, {
      threads: 3,
      onRound: ({ round }) => {
        if (round === 2) throw new Error('stop here');
      },
    });
  expect(failing).toThrow('stop here');
  expect(await noWorkersLeft()).toBe(0);
});
