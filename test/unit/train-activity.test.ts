import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { literal, withDuckDb } from '../../activities/data/duck';
import { prepareData, type PreparedData } from '../../activities/data/prepare';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { trainModel, type TrainInput, type TrainOutput } from '../../activities/training/train';
import { TrainerRegistry } from '../../activities/training/trainers';
import { defineTrainer } from '../../activities/training/trainers/types';
import { ApplicationFailure } from '@temporalio/common';
import * as ort from 'onnxruntime-node';
import { LocalArtifactStore, readAll } from '../../infra/artifacts';
import { serializeModel } from '../../infra/onnx/model';
import { PRESETS } from '../../workflows/contracts/training-spec';

/** The train activity under MockActivityEnvironment: heartbeats, checkpoint resume, cancellation. */

let dir: string;
let store: LocalArtifactStore;
let data: PreparedData;
const deps = () => ({ artifacts: store, config: { commandTrainers: {} } });
const input = (rounds: number): TrainInput => ({
  model: 'unit',
  data: { train: data.train, test: data.test, features: data.features },
  trainer: 'gbdt',
  hyperparameters: { rounds, maxDepth: 4, learningRate: 0.2 },
  seed: 7,
  checkpointEvery: 5,
});

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-unit-'));
  store = new LocalArtifactStore(path.join(dir, 'store'));
  await store.ensureReady();
  const src = path.join(dir, 'feb.parquet');
  await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 2 LIMIT 40000) TO ${literal(src)} (FORMAT parquet)`));
  const task = PRESETS['flights-delay'];
  data = await prepareData(store, src, { snapshot: { uri: '', sha256: '' }, features: task.features, label: task.label, split: task.split, seed: 1 }, dir);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Beat = { round: number; rounds: number; checkpoint?: { uri: string; sha256: string; round: number } };

test('heartbeats carry progress and checkpoints; a retry continues from the last one and yields the same model', async () => {
  const beats: Beat[] = [];
  const env = new MockActivityEnvironment();
  env.on('heartbeat', (d: unknown) => beats.push(d as Beat));
  const full = (await env.run(() => trainModel(deps(), input(30)))) as TrainOutput;
  expect(full.resumedFromRound).toBe(0);
  expect(beats.at(-1)?.round).toBe(30);
  const withCheckpoint = beats.filter((b) => b.checkpoint);
  // Checkpoints every 5 rounds; when rounds outpace uploads the older ones are skipped.
  const stored = [...new Set(withCheckpoint.map((b) => b.checkpoint!.round))];
  expect(stored.length).toBeGreaterThan(0);
  expect(stored.every((r) => r % 5 === 0 && r > 0 && r < 30)).toBe(true);

  // A retry after a crash sees the last heartbeat: it starts at that checkpoint's round.
  const last = withCheckpoint.at(-1)!;
  const from = last.checkpoint!.round;
  const retryBeats: Beat[] = [];
  const retry = new MockActivityEnvironment({ heartbeatDetails: last, attempt: 2 });
  retry.on('heartbeat', (d: unknown) => retryBeats.push(d as Beat));
  const resumed = (await retry.run(() => trainModel(deps(), input(30)))) as TrainOutput;
  expect(resumed.resumedFromRound).toBe(from);
  expect(retryBeats[0]!.round).toBe(from);
  expect(retryBeats.filter((b) => b.round > from)[0]!.round).toBe(from + 1);
  expect(resumed.model.sha256).toBe(full.model.sha256);

  // A checkpoint that does not fit the run (here: past its last round) is dropped, not retried forever.
  const other = new MockActivityEnvironment({ heartbeatDetails: last, attempt: 3 });
  const fresh = (await other.run(() => trainModel(deps(), input(from - 1)))) as TrainOutput;
  expect(fresh.resumedFromRound).toBe(0);
  expect(fresh.rounds).toBe(from - 1);
}, 60_000); // Trains three times in threads: 5 s is too short when the whole unit suite shares 2 cores.

test('cancellation stops the training thread', async () => {
  const env = new MockActivityEnvironment();
  let cancelled = false;
  env.on('heartbeat', (d: unknown) => {
    if (!cancelled && (d as Beat).round >= 2) {
      cancelled = true;
      env.cancel();
    }
  });
  await expect(env.run(() => trainModel(deps(), input(5000)))).rejects.toThrow(/cancel/i);
  expect(cancelled).toBe(true);
});

test('a trainer whose own test scores miss rows fails the step, naming the trainer: its parity check would compare nothing', async () => {
  const short = defineTrainer({
    name: 'short-scores',
    async train(ctx) {
      const { test } = await ctx.tables();
      return { onnx: new Uint8Array([1]), testScores: new Float64Array(test.rows - 1), rounds: 1 };
    },
  });
  const trainers = new TrainerRegistry({ commandTrainers: {} }, [short]);
  const err = await new MockActivityEnvironment().run(() => trainModel({ ...deps(), trainers }, { ...input(1), trainer: 'short-scores', hyperparameters: {} })).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).message).toBe(`train: trainer short-scores gave ${data.test.rows - 1} test scores for ${data.test.rows} test rows`);
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as ApplicationFailure).details).toEqual([{ fix: { overrides: [], action: 'fix trainer short-scores to score every test row, in order, and deploy it' } }]);
});

test('the stored model takes the timestamp the time features derive from; a trainer\'s graph without a derived feature as an input fails the step, naming it', async () => {
  const out = (await new MockActivityEnvironment().run(() => trainModel(deps(), input(3)))) as TrainOutput;
  const session = await ort.InferenceSession.create(await readAll(await store.get(store.keyFromUri(out.model.uri))));
  expect([...session.inputNames].sort()).toEqual(['date', 'destination', 'distance', 'origin']);
  expect(session.inputMetadata.find((m) => m.name === 'date')).toMatchObject({ isTensor: true, type: 'int64' });
  await session.release();

  const noHour = defineTrainer({
    name: 'no-hour',
    async train(ctx) {
      const { test } = await ctx.tables();
      const inputs = ctx.features.filter((f) => f.name !== 'hour').map((f) => ({ name: f.name, type: f.kind === 'numeric' ? ('FLOAT' as const) : ('STRING' as const), shape: ['batch', 1] }));
      const onnx = serializeModel({ graphName: 'g', inputs, outputs: [{ name: 'probability', type: 'FLOAT', shape: ['batch', 1] }], nodes: [{ opType: 'Identity', inputs: ['distance'], outputs: ['probability'] }] });
      return { onnx, testScores: new Float64Array(test.rows), rounds: 1 };
    },
  });
  const trainers = new TrainerRegistry({ commandTrainers: {} }, [noHour]);
  const err = await new MockActivityEnvironment().run(() => trainModel({ ...deps(), trainers }, { ...input(1), trainer: 'no-hour', hyperparameters: {} })).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).message).toMatch(/^train: the model of trainer no-hour cannot take its time features from the timestamp: ONNX model: the graph has no input hour/);
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
});
