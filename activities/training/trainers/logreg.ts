import type { Table } from '../../ml/dataset';
import { exportLogregOnnx, predictLogreg, trainLogreg, type LogregParams } from '../../ml/logreg';
import { logregHyperparameters, type LogregHyperparameters } from '../../../workflows/contracts/training-spec';
import type { ThreadPost } from './thread';
import { runInThread } from './thread-runner';
import { defineTrainer } from './types';

/** L2-regularised logistic regression (Newton), in a worker thread; quick enough to need no checkpoint. */

interface LogregJob {
  train: Table;
  test: Table;
  params: Partial<LogregParams>;
  metadata: Record<string, string>;
}

type DoneMessage = { type: 'done'; onnx: Uint8Array; testScores: Float64Array; iterations: number; summary: Record<string, unknown> };

export const logregTrainer = defineTrainer<LogregHyperparameters>({
  name: 'logreg',
  description: 'L2-regularised logistic regression with target-encoded categories',
  hyperparameters: logregHyperparameters,
  async train(ctx) {
    const { train, test } = await ctx.tables();
    const job: LogregJob = { train, test, params: { ...ctx.hyperparameters }, metadata: ctx.metadata };
    const done = await runInThread<DoneMessage>({ module: __filename, exportName: 'logregThread', job, signal: ctx.signal, onMessage: () => undefined });
    ctx.progress({ round: done.iterations, rounds: done.iterations });
    return { onnx: done.onnx, testScores: done.testScores, rounds: done.iterations, summary: done.summary };
  },
});

export function logregThread(raw: unknown, post: ThreadPost): void {
  const job = raw as LogregJob;
  const model = trainLogreg(job.train, job.params);
  const onnx = exportLogregOnnx(model, job.metadata);
  const testScores = predictLogreg(model, job.test);
  post({ type: 'done', onnx, testScores, iterations: model.iterations, summary: { iterations: model.iterations, params: model.params } } satisfies DoneMessage);
}
