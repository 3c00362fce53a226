import { parentPort, workerData } from 'node:worker_threads';
import type { Table } from './dataset';
import { exportGbdtOnnx, predictGbdt, trainGbdt, type GbdtCheckpoint, type GbdtParams } from './gbdt';
import { exportLogregOnnx, predictLogreg, trainLogreg, type LogregParams } from './logreg';

/**
 * Runs a built-in trainer off the activity's event loop, so heartbeats keep flowing while the
 * CPU is busy. Reports every round (with a checkpoint every `checkpointEvery` rounds), then the
 * ONNX bytes and the trainer's own scores on the test split.
 */

export interface TrainJob {
  trainer: 'gbdt' | 'logreg';
  train: Table;
  test: Table;
  params: Record<string, unknown>;
  checkpointEvery: number;
  resumeFrom?: GbdtCheckpoint;
  metadata: Record<string, string>;
}

/**
 * The trees added since the previous checkpoint message: sending whole checkpoints every few
 * rounds would copy O(rounds²) trees between threads when rounds are fast.
 */
export interface CheckpointDelta {
  round: number;
  baseScore: number;
  encodings: GbdtCheckpoint['encodings'];
  trees: GbdtCheckpoint['trees'];
}

export type ThreadMessage =
  | { type: 'round'; round: number; rounds: number; delta?: CheckpointDelta }
  | { type: 'done'; onnx: Uint8Array; testScores: Float64Array; summary: Record<string, unknown> };

const job = workerData as TrainJob;
const port = parentPort!;

if (job.trainer === 'gbdt') {
  let sent = job.resumeFrom?.round ?? 0;
  const model = trainGbdt(job.train, job.params as Partial<GbdtParams>, {
    resumeFrom: job.resumeFrom,
    onRound: ({ round, rounds, checkpoint }) => {
      let delta: CheckpointDelta | undefined;
      if (round % job.checkpointEvery === 0 && round < rounds) {
        const cp = checkpoint();
        delta = { round: cp.round, baseScore: cp.baseScore, encodings: sent === 0 ? cp.encodings : [], trees: cp.trees.slice(sent) };
        sent = cp.round;
      }
      port.postMessage({ type: 'round', round, rounds, delta } satisfies ThreadMessage);
    },
  });
  const onnx = exportGbdtOnnx(model, job.metadata);
  const testScores = predictGbdt(model, job.test);
  port.postMessage({ type: 'done', onnx, testScores, summary: { trees: model.trees.length, params: model.params } } satisfies ThreadMessage);
} else {
  const model = trainLogreg(job.train, job.params as Partial<LogregParams>);
  port.postMessage({ type: 'round', round: model.iterations, rounds: model.iterations } satisfies ThreadMessage);
  const onnx = exportLogregOnnx(model, job.metadata);
  const testScores = predictLogreg(model, job.test);
  port.postMessage({ type: 'done', onnx, testScores, summary: { iterations: model.iterations, params: model.params } } satisfies ThreadMessage);
}
