import * as ort from 'onnxruntime-node';
import { BatchQueue, concatFeeds, splitRows, type RunFeeds } from '../../workers/serving/batching';
import type { ParsedInfer } from '../../workers/serving/oip';

/** Dynamic batching's pure parts: joining requests' feeds, splitting a run's output, and when a queue runs. */

function request(hours: number[], origins: string[]): ParsedInfer {
  const n = hours.length;
  return {
    rows: n,
    feeds: { hour: new ort.Tensor('float32', Float32Array.from(hours), [n, 1]), origin: new ort.Tensor('string', origins, [n, 1]) },
    columns: { hour: hours, origin: origins },
    outputs: ['probability'],
  };
}

/** A model of our own: each row's score is its hour plus the length of its origin, so every row's answer is known. */
function model(): { run: RunFeeds; calls: number[] } {
  const calls: number[] = [];
  const run: RunFeeds = async (feeds) => {
    const hours = feeds.hour!.data as Float32Array;
    const origins = feeds.origin!.data as string[];
    calls.push(hours.length);
    if (origins.includes('FAIL')) throw new Error('the model refuses FAIL');
    return Float32Array.from(hours, (h, i) => h + origins[i]!.length);
  };
  return { run, calls };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test('concatFeeds joins each input in request order; splitRows hands each request its rows', () => {
  const feeds = concatFeeds([request([1, 2], ['ATL', 'ORD']), request([3], ['SFO']), request([4, 5, 6], ['A', 'B', 'C'])]);
  expect(feeds.hour!.dims).toEqual([6, 1]);
  expect(Array.from(feeds.hour!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(feeds.origin!.type).toBe('string');
  expect(feeds.origin!.data).toEqual(['ATL', 'ORD', 'SFO', 'A', 'B', 'C']);
  const parts = splitRows(Float32Array.of(10, 20, 30, 40, 50, 60), [2, 1, 3])!;
  expect(parts.map((p) => Array.from(p))).toEqual([[10, 20], [30], [40, 50, 60]]);
  // An output that is not one value per row cannot be split.
  expect(splitRows(Float32Array.of(1, 2, 3), [2, 2])).toBeUndefined();
});

test('requests submitted together share one run, and each gets what it gets alone', async () => {
  const { run, calls } = model();
  const batches: Array<[number, number]> = [];
  const q = new BatchQueue(run, { maxDelayMs: 1000, maxRows: 100 }, (requests, rows) => batches.push([requests, rows]));
  const reqs = [request([1, 2], ['ATL', 'ORD']), request([3], ['SF']), request([4, 5, 6], ['A', 'BB', 'CCC'])];
  const answers = await Promise.all(reqs.map((r) => q.submit(r)));
  expect(calls).toEqual([6]);
  expect(batches).toEqual([[3, 6]]);
  const alone = await Promise.all(reqs.map((r) => model().run(r.feeds)));
  expect(answers.map((a) => Array.from(a))).toEqual(alone.map((a) => Array.from(a)));
});

test('with no delay every request runs alone', async () => {
  const { run, calls } = model();
  const q = new BatchQueue(run, { maxDelayMs: 0, maxRows: 100 });
  await Promise.all([q.submit(request([1], ['A'])), q.submit(request([2], ['B']))]);
  expect(calls).toEqual([1, 1]);
});

test('a batch holds at most maxRows rows; a larger request runs alone', async () => {
  const { run, calls } = model();
  const q = new BatchQueue(run, { maxDelayMs: 1000, maxRows: 4 });
  const answers = await Promise.all([q.submit(request([1, 2, 3], ['A', 'B', 'C'])), q.submit(request([4, 5], ['D', 'E'])), q.submit(request([6, 7, 8, 9, 10], ['F', 'G', 'H', 'I', 'J'])), q.submit(request([11], ['K']))]);
  expect(calls).toEqual([3, 5, 3]);
  expect(answers.map((a) => Array.from(a))).toEqual([[2, 3, 4], [5, 6], [7, 8, 9, 10, 11], [12]]);
});

test('a batch waits for a request still being read, and goes once it arrived', async () => {
  const { run, calls } = model();
  const q = new BatchQueue(run, { maxDelayMs: 60_000, maxRows: 100 });
  q.expect();
  q.expect();
  q.arrived();
  const first = q.submit(request([1], ['A']));
  for (let i = 0; i < 5; i++) await turn();
  expect(calls).toEqual([]);
  q.arrived();
  const second = q.submit(request([2], ['BB']));
  expect(Array.from(await first)).toEqual([2]);
  expect(Array.from(await second)).toEqual([4]);
  expect(calls).toEqual([2]);
});

test('a request refused while being read releases the batch waiting for it', async () => {
  const { run, calls } = model();
  const q = new BatchQueue(run, { maxDelayMs: 60_000, maxRows: 100 });
  q.expect();
  q.expect();
  q.arrived();
  const waiting = q.submit(request([1], ['A']));
  await turn();
  q.arrived(); // the other one's body was refused: it never submits
  expect(Array.from(await waiting)).toEqual([2]);
  expect(calls).toEqual([1]);
});

test('the delay bounds the wait for a request that is slow to arrive', async () => {
  const { run } = model();
  const q = new BatchQueue(run, { maxDelayMs: 5, maxRows: 100 });
  q.expect();
  // The expected request never arrives; the one waiting goes after the delay anyway.
  expect(Array.from(await q.submit(request([1], ['A'])))).toEqual([2]);
});

test('a run that fails for a batch is retried request by request, so only the request the model refuses fails', async () => {
  const { run, calls } = model();
  const batches: Array<[number, number]> = [];
  const q = new BatchQueue(run, { maxDelayMs: 1000, maxRows: 100 }, (requests, rows) => batches.push([requests, rows]));
  const results = await Promise.allSettled([q.submit(request([1], ['A'])), q.submit(request([2], ['FAIL'])), q.submit(request([3], ['CC']))]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect(Array.from((results[0] as PromiseFulfilledResult<Float32Array>).value)).toEqual([2]);
  expect(Array.from((results[2] as PromiseFulfilledResult<Float32Array>).value)).toEqual([5]);
  expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/refuses FAIL/);
  expect(calls).toEqual([3, 1, 1, 1]);
  // The failed batch scored nothing; the three single runs are what was scored.
  expect(batches).toEqual([[1, 1], [1, 1], [1, 1]]);
});
