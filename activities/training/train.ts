import { Context, activityInfo, cancellationDetails, heartbeat, log } from '@temporalio/activity';
import { isDependencyOutage, waitingOutOutages } from '../dependency-outage';
import { readAll, type ArtifactStore } from '../../infra/artifacts';
import type { Config } from '../../infra/config';
import { withDuckDb } from '../data/duck';
import { withTimeInputs } from '../ml/time-graph';
import { loadTable, type PreparedData } from '../data/prepare';
import { localArtifact } from '../data/sources';
import { currentGpu, describeDevice, gpuChildEnv } from '../gpu-context';
import { currentWorkflow, dataError } from '../steps';
import type { FeatureSpec, Table } from '../ml/dataset';
import { CheckpointRefused, TrainerRegistry, type ResumePoint, type TrainerCheckpoint, type TrainerContext, type TrainedModel } from './trainers';

/**
 * The train step: any trainer of the worker's registry (built-in, registered through the plugin
 * options, or an external command). Progress becomes heartbeats carrying a checkpoint
 * reference; a retry (worker crash, timeout) reads the last heartbeat and hands the trainer
 * that checkpoint instead of starting at round 0.
 */

export interface TrainInput {
  model: string;
  data: Pick<PreparedData, 'train' | 'test' | 'features' | 'task' | 'classes'>;
  trainer: string;
  command?: string;
  hyperparameters: Record<string, unknown>;
  seed: number;
  checkpointEvery: number;
}

export interface ArtifactRef {
  uri: string;
  sha256: string;
  bytes: number;
}

export interface TrainOutput {
  model: ArtifactRef;
  /** The trainer's own probabilities on the test split (float64 LE): the ONNX parity reference. */
  trainerScores?: ArtifactRef;
  trainer: string;
  rounds: number;
  /** Round the attempt started from: > 0 when it continued from a checkpoint. */
  resumedFromRound: number;
  attempt: number;
  trainSeconds: number;
  device: string;
  summary: Record<string, unknown>;
}

interface TrainHeartbeat {
  round: number;
  rounds: number;
  checkpoint?: { uri: string; sha256: string; round: number };
}

type Deps = { artifacts: ArtifactStore; config: Pick<Config, 'commandTrainers'> & Partial<Pick<Config, 'trainerEnv' | 'trainThreads'>>; trainers?: TrainerRegistry };

function lastHeartbeat(): TrainHeartbeat | undefined {
  const d = activityInfo().heartbeatDetails as TrainHeartbeat | undefined;
  return d && typeof d === 'object' && typeof d.round === 'number' ? d : undefined;
}

export async function trainModel(deps: Deps, input: TrainInput): Promise<TrainOutput> {
  const started = performance.now();
  const info = activityInfo();
  // The GPUs this step leased (bindActivitiesToGpus), not the worker process's environment.
  const device = describeDevice();
  const gpus = currentGpu()?.gpus ?? [];
  const registry = deps.trainers ?? new TrainerRegistry({ commandTrainers: deps.config.commandTrainers, trainerEnv: deps.config.trainerEnv });
  const trainer = registry.get(input.trainer);
  if (!trainer) throw dataError(`train: no trainer named ${JSON.stringify(input.trainer)} on this worker (registered: ${registry.names().join(', ')})`, {
      overrides: [],
      action: `deploy training workers that register ${JSON.stringify(input.trainer)}`,
    });
  let hyperparameters: unknown = input.hyperparameters;
  if (trainer.hyperparameters) {
    const parsed = trainer.hyperparameters.safeParse(input.hyperparameters);
    if (!parsed.success) {
      throw dataError(`train: invalid hyperparameters for trainer ${trainer.name}: ${parsed.error.issues.map((i) => `hyperparameters${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}`).join('; ')}`, { overrides: ['hyperparameters'] });
    }
    hyperparameters = parsed.data;
  }
  const metadata = { model: input.model, trainer: input.trainer, workflow_id: currentWorkflow().workflowId };
  const prior = lastHeartbeat();
  const keepAliveMs = Math.max(500, Math.min(10_000, (info.heartbeatTimeoutMs ?? 60_000) / 4));
  // Waiting for the store, the step heartbeats the checkpoint it already has.
  const download = (ref: Parameters<typeof localArtifact>[1]) => waitingOutOutages('train: reading the prepared data', () => localArtifact(deps.artifacts, ref, '.parquet'), { onWait: () => heartbeat(prior ?? { round: 0, rounds: 0 }) });
  const trainPath = await download(input.data.train);
  const testPath = await download(input.data.test);
  const features = input.data.features as FeatureSpec[];
  const task = input.data.task ?? 'binary';
  const loadAs = { task, classes: input.data.classes } as const;
  let tables: Promise<{ train: Table; test: Table }> | undefined;
  const signal = Context.current().cancellationSignal;

  const attempt = async (resume: TrainHeartbeat['checkpoint']): Promise<{ result: TrainedModel; resumedFromRound: number; last: TrainHeartbeat }> => {
    const uploader = new CheckpointUploader(deps.artifacts, resume);
    const ctx: TrainerContext = {
      model: input.model,
      task,
      ...(input.data.classes ? { classes: input.data.classes } : {}),
      features,
      hyperparameters: hyperparameters as Record<string, unknown>,
      seed: input.seed,
      checkpointEvery: input.checkpointEvery,
      threads: deps.config.trainThreads ?? 1,
      files: { train: trainPath, test: testPath },
      tables: () => (tables ??= withDuckDb(async (c) => ({ train: await loadTable(trainPath, features, c, loadAs), test: await loadTable(testPath, features, c, loadAs) }))),
      resumeFrom: resume ? resumePoint(deps.artifacts, resume) : undefined,
      progress: (p) => uploader.progress(p.round, p.rounds, p.checkpoint),
      signal,
      metadata,
      log,
      childEnv: () => ({ ...process.env, ...gpuChildEnv() }),
      gpus,
      command: input.command,
    };
    heartbeat({ round: resume?.round ?? 0, rounds: 0, checkpoint: resume } satisfies TrainHeartbeat);
    // Liveness apart from progress: while the trainer is quiet (restoring a late checkpoint,
    // exporting, uploading) the step still heartbeats its last details, so a short heartbeat
    // timeout notices a dead worker but never a busy one.
    const alive = setInterval(() => uploader.keepAlive(), keepAliveMs);
    try {
      const result = await trainer.train(ctx);
      await uploader.flush();
      return { result, resumedFromRound: resume?.round ?? 0, last: { round: result.rounds, rounds: result.rounds, checkpoint: uploader.position.checkpoint } };
    } catch (err) {
      if (cancellationDetails()?.paused) log.info(`train: paused by an operator at round ${uploader.position.round}; unpaused, it continues from ${uploader.position.checkpoint ? `the checkpoint at round ${uploader.position.checkpoint.round}` : 'round 0 (no checkpoint yet)'}`);
      throw err;
    } finally {
      clearInterval(alive);
      await uploader.settle();
    }
  };

  let outcome: { result: TrainedModel; resumedFromRound: number; last: TrainHeartbeat };
  if (prior?.checkpoint) {
    log.info(`train: ${trainer.name} continues from the checkpoint at round ${prior.checkpoint.round} (attempt ${info.attempt})`);
    try {
      outcome = await attempt(prior.checkpoint);
    } catch (err) {
      if (!(err instanceof CheckpointRefused) || signal.aborted) throw err;
      log.warn(`train: the checkpoint was refused (${err.message}); training from round 0`);
      outcome = await attempt(undefined);
    }
  } else {
    outcome = await attempt(undefined);
  }
  const { result, resumedFromRound, last } = outcome;
  // The trained model must not be lost to a store outage: its upload waits for the store,
  // heartbeating the last checkpoint meanwhile.
  const alive = setInterval(() => heartbeat(last), keepAliveMs);
  try {
    return await finish(deps, input, { result, resumedFromRound, last, attempt: info.attempt, started, device });
  } finally {
    clearInterval(alive);
  }
}

async function finish(
  deps: Deps,
  input: TrainInput,
  o: { result: TrainedModel; resumedFromRound: number; last: TrainHeartbeat; attempt: number; started: number; device: string },
): Promise<TrainOutput> {
  const { result, resumedFromRound, last, started, device } = o;
  // Multiclass: k probabilities per row, row-major.
  const width = input.data.classes?.length ?? 1;
  if (result.testScores && result.testScores.length !== input.data.test.rows * width) {
    throw dataError(`train: trainer ${input.trainer} gave ${result.testScores.length} test scores for ${input.data.test.rows} test rows${width > 1 ? ` of ${width} classes` : ''}`, {
      overrides: [],
      action: `fix trainer ${input.trainer} to score every test row, in order${width > 1 ? ', one probability per class' : ''}, and deploy it`,
    });
  }
  const upload = (what: string, bytes: Buffer, mediaType: string) => waitingOutOutages(`train: uploading ${what}`, () => deps.artifacts.putContent(bytes, { mediaType }), { onWait: () => heartbeat(last) });
  let onnx: Uint8Array;
  try {
    // The trainer's graph takes the derived time features; the served one takes the timestamps and derives them itself.
    onnx = withTimeInputs(result.onnx, input.data.features as FeatureSpec[]);
  } catch (err) {
    throw dataError(`train: the model of trainer ${input.trainer} cannot take its time features from the timestamp: ${(err as Error).message}`, {
      overrides: [],
      action: `fix trainer ${input.trainer} to give its model one FLOAT [batch, 1] input per feature, named as the feature, and deploy it`,
    });
  }
  const put = await upload('the model', Buffer.from(onnx), 'application/onnx');
  let trainerScores: ArtifactRef | undefined;
  if (result.testScores) {
    const bytes = Buffer.from(result.testScores.buffer, result.testScores.byteOffset, result.testScores.byteLength);
    const s = await upload('the trainer\'s test scores', bytes, 'application/octet-stream');
    trainerScores = { uri: s.uri, sha256: s.sha256, bytes: s.bytes };
  }
  const trainSeconds = (performance.now() - started) / 1000;
  log.info(`train: ${input.trainer} done in ${trainSeconds.toFixed(1)} s (${result.rounds} rounds, resumed from ${resumedFromRound}) on ${device}`);
  return {
    model: { uri: put.uri, sha256: put.sha256, bytes: put.bytes },
    trainerScores,
    trainer: input.trainer === 'command' ? `command:${input.command}` : input.trainer,
    rounds: result.rounds,
    resumedFromRound,
    attempt: o.attempt,
    trainSeconds,
    device,
    summary: result.summary ?? {},
  };
}

function resumePoint(artifacts: ArtifactStore, ref: NonNullable<TrainHeartbeat['checkpoint']>): ResumePoint {
  let bytes: Promise<Buffer> | undefined;
  const read = () => (bytes ??= (async () => readAll(await artifacts.get(artifacts.keyFromUri(ref.uri))))());
  return {
    round: ref.round,
    bytes: read,
    json: async <T>() => {
      try {
        return JSON.parse((await read()).toString('utf8')) as T;
      } catch (err) {
        throw new CheckpointRefused(`checkpoint ${ref.uri} is not JSON: ${(err as Error).message}`);
      }
    },
  };
}

/**
 * Heartbeats progress and uploads checkpoints, one upload at a time and always of the newest
 * state offered: when rounds outpace uploads, intermediate checkpoints are skipped instead of
 * queueing up. Every heartbeat names the latest uploaded checkpoint.
 */
class CheckpointUploader {
  private latest?: TrainerCheckpoint;
  private uploading?: Promise<void>;
  private failed?: unknown;
  private round = 0;
  private rounds = 0;

  constructor(
    private readonly artifacts: ArtifactStore,
    private ref: TrainHeartbeat['checkpoint'],
  ) {
    this.round = ref?.round ?? 0;
  }

  progress(round: number, rounds: number, checkpoint?: TrainerCheckpoint): void {
    this.round = round;
    this.rounds = rounds;
    if (checkpoint) {
      this.latest = checkpoint;
      this.uploading ??= this.drain().finally(() => (this.uploading = undefined));
    }
    this.beat();
  }

  /** Says again what the last heartbeat said (liveness while the trainer is quiet). */
  keepAlive(): void {
    this.beat();
  }

  /** The round reached and the checkpoint the last heartbeat names. */
  get position(): { round: number; checkpoint: TrainHeartbeat['checkpoint'] } {
    return { round: this.round, checkpoint: this.ref };
  }

  private beat(): void {
    heartbeat({ round: this.round, rounds: this.rounds, checkpoint: this.ref } satisfies TrainHeartbeat);
  }

  private async drain(): Promise<void> {
    try {
      while (this.latest) {
        const take = this.latest;
        this.latest = undefined;
        const { round, data } = await take();
        const bytes = Buffer.isBuffer(data) ? data : data instanceof Uint8Array ? Buffer.from(data) : JSON.stringify(data);
        const put = await this.artifacts.putContent(bytes, { mediaType: typeof bytes === 'string' ? 'application/json' : 'application/octet-stream' });
        this.ref = { uri: put.uri, sha256: put.sha256, round };
        this.beat();
      }
    } catch (err) {
      // A store outage costs this checkpoint, not the training: the heartbeat keeps naming the
      // last one stored, and the next checkpoint tries again.
      if (isDependencyOutage(err)) log.warn(`train: checkpoint not stored (${err instanceof Error ? err.message : String(err)}); keeping ${this.ref ? `the one at round ${this.ref.round}` : 'none: no checkpoint is stored yet'}`);
      else this.failed = err;
    }
  }

  /** Waits for the uploads offered so far; an upload that failed fails the step. */
  async flush(): Promise<void> {
    while (this.uploading) await this.uploading;
    if (this.failed) throw this.failed;
  }

  /** Waits for any upload still running, ignoring its outcome (the step is ending anyway). */
  async settle(): Promise<void> {
    while (this.uploading) await this.uploading.catch(() => undefined);
  }
}
