import type { z } from 'zod';
import { TRAINER_NAME, type TaskKind } from '../../../workflows/contracts/training-spec';
import type { ClassList, FeatureSpec, Table } from '../../ml/dataset';
import type { Gpu } from '../../gpu-context';

export { TRAINER_NAME };

/**
 * The trainer contract, one interface for the built-in trainers, a user's TypeScript trainer
 * registered through the plugin options, and external command trainers. The train activity
 * does the Temporal part (heartbeats, checkpoint upload and resume, cancellation); a trainer
 * only fits a model and exports ONNX with its preprocessing inside the graph.
 */

/**
 * A checkpoint, read when its upload starts (so the newest state wins): the round (epoch, step,
 * tree) it was taken at and JSON-serialisable state or raw bytes.
 */
export type TrainerCheckpoint = () => { round: number; data: unknown } | Promise<{ round: number; data: unknown }>;

export interface ResumePoint {
  round: number;
  /** The checkpoint's bytes, as the trainer saved them. */
  bytes(): Promise<Buffer>;
  /** The checkpoint parsed as JSON (for checkpoints that were JSON state). */
  json<T = unknown>(): Promise<T>;
}

export interface TrainerContext<P = Record<string, unknown>> {
  model: string;
  /** What the model predicts: binary gives P(label = 1) as output `probability`, regression the number as output `prediction`, multiclass `probabilities` [batch, k] and `label`. */
  task: TaskKind;
  /** Multiclass: the classes in model order; the graph's `probabilities` has one column per class and `label` gives the class itself. */
  classes?: ClassList;
  features: FeatureSpec[];
  /** Validated with the trainer's `hyperparameters` schema (when it has one). */
  hyperparameters: P;
  seed: number;
  /** How often (in rounds) the spec asks for a checkpoint. */
  checkpointEvery: number;
  /** CPU threads the trainer may use (MLOPS_TRAIN_THREADS); absent means 1. */
  threads?: number;
  /** The prepared splits as parquet files (label column `label`), for trainers that read files. */
  files: { train: string; test: string };
  /** The prepared splits as in-memory columnar tables. */
  tables(): Promise<{ train: Table; test: Table }>;
  /** On a retry after a crash or timeout: the last checkpoint this run saved. */
  resumeFrom?: ResumePoint;
  /**
   * Reports progress; Temporal sees it as a heartbeat. With `checkpoint`, the state is saved
   * (content-addressed) for a retry to resume from; while one upload runs, only the newest
   * offered state is kept.
   */
  progress(p: { round: number; rounds: number; checkpoint?: TrainerCheckpoint }): void;
  /** Aborted when the activity is cancelled (workflow cancel, abort, timeout). */
  signal: AbortSignal;
  /** Key/values to store in the ONNX model's metadata. */
  metadata: Record<string, string>;
  log: { info(msg: string): void; warn(msg: string): void };
  /** For command trainers: the process environment pinned to this activity's GPUs (CUDA_VISIBLE_DEVICES), if any. */
  childEnv(): NodeJS.ProcessEnv;
  /** The GPUs leased for this step (`resources.gpu` of them); empty on the CPU. */
  gpus?: readonly Gpu[];
  /** For the `command` trainer: the registered command the spec names. */
  command?: string;
}

export interface TrainedModel {
  onnx: Uint8Array;
  /** The trainer's own scores on the test split (P(label = 1), the predicted number, or rows × classes probabilities, row-major): the reference the ONNX export is checked against. */
  testScores?: Float64Array;
  rounds: number;
  summary?: Record<string, unknown>;
}

export interface Trainer<P = Record<string, unknown>> {
  /** Lowercase letters, digits and dashes; what a training spec's `trainer` names. */
  name: string;
  description?: string;
  /** Checked before training; a bad value fails the step without retrying, naming the field. */
  hyperparameters?: z.ZodType<P>;
  train(ctx: TrainerContext<P>): Promise<TrainedModel>;
}

/** A trainer of any hyperparameter type, as registries hold them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTrainer = Trainer<any>;

/** Thrown by a trainer that cannot continue from the checkpoint it was given: the activity starts again from round 0. */
export class CheckpointRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointRefused';
  }
}


/** A trainer, typed by its hyperparameter schema (`defineTrainer({ name, hyperparameters: z.object(…), train })`). */
export function defineTrainer<P>(trainer: Trainer<P>): Trainer<P> {
  if (!TRAINER_NAME.test(trainer.name)) throw new TypeError(`trainer name ${JSON.stringify(trainer.name)}: use lowercase letters, digits and dashes`);
  return trainer;
}
