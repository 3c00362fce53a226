import { exportGbdtOnnx, predictGbdt, trainGbdt, type GbdtCheckpoint, type GbdtParams } from '../../ml/gbdt';
import type { Table } from '../../ml/dataset';
import { gbdtHyperparameters, type GbdtHyperparameters } from '../../../workflows/contracts/training-spec';
import type { ThreadPost } from './thread';
import { runInThread } from './thread-runner';
import { CheckpointRefused, defineTrainer } from './types';

/** Histogram gradient-boosted trees, in a worker thread, checkpointing every N rounds. */

interface GbdtJob {
  train: Table;
  test: Table;
  params: Partial<GbdtParams>;
  checkpointEvery: number;
  threads: number;
  resumeFrom?: GbdtCheckpoint;
  metadata: Record<string, string>;
}

/**
 * The trees added since the previous checkpoint message: sending whole checkpoints every few
 * rounds would copy O(rounds²) trees between threads when rounds are fast.
 */
interface CheckpointDelta {
  round: number;
  baseScore: number;
  encodings: GbdtCheckpoint['encodings'];
  trees: GbdtCheckpoint['trees'];
}

type RoundMessage = { type: 'round'; round: number; rounds: number; delta?: CheckpointDelta };
type DoneMessage = { type: 'done'; onnx: Uint8Array; testScores: Float64Array; summary: Record<string, unknown> };

export const gbdtTrainer = defineTrainer<GbdtHyperparameters>({
  name: 'gbdt',
  description: 'histogram gradient-boosted trees (binary log loss), deterministic under a seed',
  hyperparameters: gbdtHyperparameters,
  async train(ctx) {
    const { train, test } = await ctx.tables();
    let resumeFrom: GbdtCheckpoint | undefined;
    if (ctx.resumeFrom) {
      resumeFrom = await ctx.resumeFrom.json<GbdtCheckpoint>();
      if (!resumeFrom || !Array.isArray(resumeFrom.trees)) throw new CheckpointRefused('the checkpoint is not a GBDT checkpoint');
    }
    // The training state so far, rebuilt from the thread's deltas.
    const state: GbdtCheckpoint = resumeFrom ? { ...resumeFrom, trees: [...resumeFrom.trees] } : { round: 0, baseScore: 0, encodings: [], trees: [] };
    let rounds = 0;
    const job: GbdtJob = { train, test, params: { seed: ctx.seed, ...ctx.hyperparameters }, checkpointEvery: ctx.checkpointEvery, threads: ctx.threads ?? 1, resumeFrom, metadata: ctx.metadata };
    let done: DoneMessage;
    try {
      done = await runInThread<DoneMessage, RoundMessage>({
        module: __filename,
        exportName: 'gbdtThread',
        job,
        signal: ctx.signal,
        onMessage: (m) => {
          rounds = m.rounds;
          if (m.delta) {
            state.trees.push(...m.delta.trees);
            state.round = m.delta.round;
            state.baseScore = m.delta.baseScore;
            if (m.delta.encodings.length) state.encodings = m.delta.encodings;
          }
          ctx.progress({ round: m.round, rounds: m.rounds, checkpoint: m.delta ? () => ({ round: state.round, data: state }) : undefined });
        },
      });
    } catch (err) {
      // A checkpoint the trainer refuses (other data, other parameters) would fail every retry.
      if (resumeFrom && !ctx.signal.aborted && /checkpoint/i.test(err instanceof Error ? err.message : String(err))) throw new CheckpointRefused(err instanceof Error ? err.message : String(err));
      throw err;
    }
    return { onnx: done.onnx, testScores: done.testScores, rounds: rounds || (done.summary.trees as number) || 0, summary: done.summary };
  },
});

/** The thread side (see thread.ts): trains, posting every round and a delta every `checkpointEvery`. */
export function gbdtThread(raw: unknown, post: ThreadPost): void {
  const job = raw as GbdtJob;
  let sent = job.resumeFrom?.round ?? 0;
  const model = trainGbdt(job.train, job.params, {
    resumeFrom: job.resumeFrom,
    threads: job.threads,
    onRound: ({ round, rounds, checkpoint }) => {
      let delta: CheckpointDelta | undefined;
      if (round % job.checkpointEvery === 0 && round < rounds) {
        const cp = checkpoint();
        delta = { round: cp.round, baseScore: cp.baseScore, encodings: sent === 0 ? cp.encodings : [], trees: cp.trees.slice(sent) };
        sent = cp.round;
      }
      post({ type: 'round', round, rounds, delta } satisfies RoundMessage);
    },
  });
  const onnx = exportGbdtOnnx(model, job.metadata);
  const testScores = predictGbdt(model, job.test);
  post({ type: 'done', onnx, testScores, summary: { trees: model.trees.length, params: model.params } } satisfies DoneMessage);
}
