import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { Worker } from 'node:worker_threads';
import { Context, activityInfo, heartbeat, log } from '@temporalio/activity';
import { readAll, type ArtifactStore } from '../../infra/artifacts';
import type { Config } from '../../infra/config';
import { literal, withDuckDb } from '../data/duck';
import { loadTable, LABEL_COLUMN, type PreparedData } from '../data/prepare';
import { localArtifact, withTempDir } from '../data/sources';
import { gpuChildEnv } from '../gpu-context';
import { currentWorkflow, dataError } from '../steps';
import type { FeatureSpec } from './dataset';
import type { GbdtCheckpoint } from './gbdt';
import type { ThreadMessage, TrainJob } from './thread';

/**
 * The train step: a built-in trainer in a worker thread, or a registered external command.
 * Both heartbeat progress with a checkpoint reference; a retry (worker crash, timeout) reads the
 * last heartbeat and continues from that checkpoint instead of round 0.
 */

export interface TrainInput {
  model: string;
  data: Pick<PreparedData, 'train' | 'test' | 'features'>;
  trainer: 'gbdt' | 'logreg' | 'command';
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

type Deps = { artifacts: ArtifactStore; config: Pick<Config, 'commandTrainers'> };

async function putJson(artifacts: ArtifactStore, value: unknown): Promise<{ uri: string; sha256: string }> {
  const put = await artifacts.putContent(JSON.stringify(value), { mediaType: 'application/json' });
  return { uri: put.uri, sha256: put.sha256 };
}

function lastHeartbeat(): TrainHeartbeat | undefined {
  const d = activityInfo().heartbeatDetails as TrainHeartbeat | undefined;
  return d && typeof d === 'object' && typeof d.round === 'number' ? d : undefined;
}

export async function trainModel(deps: Deps, input: TrainInput): Promise<TrainOutput> {
  const started = performance.now();
  const info = activityInfo();
  const device = process.env.CUDA_VISIBLE_DEVICES ? `gpu ${process.env.CUDA_VISIBLE_DEVICES}` : 'cpu';
  const metadata = { model: input.model, trainer: input.trainer, workflow_id: currentWorkflow().workflowId };
  const trainPath = await localArtifact(deps.artifacts, input.data.train, '.parquet');
  const testPath = await localArtifact(deps.artifacts, input.data.test, '.parquet');
  const result =
    input.trainer === 'command'
      ? await runCommandTrainer(deps, input, trainPath, testPath)
      : await runBuiltinTrainer(deps, input, trainPath, testPath, metadata);
  const put = await deps.artifacts.putContent(Buffer.from(result.onnx), { mediaType: 'application/onnx' });
  let trainerScores: ArtifactRef | undefined;
  if (result.testScores) {
    const bytes = Buffer.from(result.testScores.buffer, result.testScores.byteOffset, result.testScores.byteLength);
    const s = await deps.artifacts.putContent(bytes, { mediaType: 'application/octet-stream' });
    trainerScores = { uri: s.uri, sha256: s.sha256, bytes: s.bytes };
  }
  const trainSeconds = (performance.now() - started) / 1000;
  log.info(`train: ${input.trainer} done in ${trainSeconds.toFixed(1)} s (${result.rounds} rounds, resumed from ${result.resumedFromRound}) on ${device}`);
  return {
    model: { uri: put.uri, sha256: put.sha256, bytes: put.bytes },
    trainerScores,
    trainer: input.trainer === 'command' ? `command:${input.command}` : input.trainer,
    rounds: result.rounds,
    resumedFromRound: result.resumedFromRound,
    attempt: info.attempt,
    trainSeconds,
    device,
    summary: result.summary,
  };
}

interface TrainerResult {
  onnx: Uint8Array;
  testScores?: Float64Array;
  rounds: number;
  resumedFromRound: number;
  summary: Record<string, unknown>;
}

async function runBuiltinTrainer(deps: Deps, input: TrainInput, trainPath: string, testPath: string, metadata: Record<string, string>): Promise<TrainerResult> {
  const features = input.data.features as FeatureSpec[];
  const [train, test] = await withDuckDb(async (c) => [await loadTable(trainPath, features, c), await loadTable(testPath, features, c)] as const);
  const params = input.trainer === 'gbdt' ? { seed: input.seed, ...input.hyperparameters } : { ...input.hyperparameters };
  const job: TrainJob = { trainer: input.trainer as 'gbdt' | 'logreg', train, test, params, checkpointEvery: input.checkpointEvery, metadata };

  const prior = lastHeartbeat();
  if (input.trainer === 'gbdt' && prior?.checkpoint) {
    const resumeFrom = JSON.parse((await readAll(await deps.artifacts.get(deps.artifacts.keyFromUri(prior.checkpoint.uri)))).toString('utf8')) as GbdtCheckpoint;
    log.info(`train: continuing from the checkpoint at round ${resumeFrom.round} (attempt ${activityInfo().attempt})`);
    try {
      return await runThread(deps, { ...job, resumeFrom }, prior.checkpoint);
    } catch (err) {
      // A checkpoint the trainer refuses (other data, other parameters) would fail every retry.
      if (Context.current().cancellationSignal.aborted || !/checkpoint/i.test(err instanceof Error ? err.message : String(err))) throw err;
      log.warn(`train: the checkpoint was refused (${err instanceof Error ? err.message : String(err)}); training from round 0`);
    }
  }
  return runThread(deps, job, undefined);
}

/** Runs one training job in a worker thread, heartbeating its rounds and uploading its checkpoints. */
async function runThread(deps: Deps, job: TrainJob, startCheckpoint: TrainHeartbeat['checkpoint']): Promise<TrainerResult> {
  const resumedFromRound = job.resumeFrom?.round ?? 0;
  let checkpoint = startCheckpoint;
  let rounds = 0;
  let lastRound = resumedFromRound;
  // The training state so far, rebuilt from the thread's deltas.
  const state: GbdtCheckpoint = job.resumeFrom ? { ...job.resumeFrom, trees: [...job.resumeFrom.trees] } : { round: 0, baseScore: 0, encodings: [], trees: [] };
  let dirty = false;
  let uploading: Promise<void> | undefined;
  heartbeat({ round: resumedFromRound, rounds: 0, checkpoint } satisfies TrainHeartbeat);
  const worker = new Worker(path.join(__dirname, 'thread-entry.js'), { workerData: job });
  const cancelled = Context.current().cancellationSignal;
  const onCancel = () => void worker.terminate();
  cancelled.addEventListener('abort', onCancel);
  let pending = Promise.resolve();
  try {
    const done = await new Promise<Extract<ThreadMessage, { type: 'done' }>>((resolve, reject) => {
      let finished: Extract<ThreadMessage, { type: 'done' }> | undefined;
      worker.on('message', (m: ThreadMessage) => {
        if (m.type === 'done') {
          finished = m;
          return;
        }
        rounds = m.rounds;
        lastRound = m.round;
        if (m.delta) {
          state.trees.push(...m.delta.trees);
          state.round = m.delta.round;
          state.baseScore = m.delta.baseScore;
          if (m.delta.encodings.length) state.encodings = m.delta.encodings;
          dirty = true;
          // One upload at a time, always of the newest state: when rounds outpace uploads,
          // intermediate checkpoints are skipped instead of queueing up.
          if (!uploading) {
            uploading = (async () => {
              while (dirty) {
                dirty = false;
                const round = state.round;
                checkpoint = { ...(await putJson(deps.artifacts, state)), round };
                heartbeat({ round: lastRound, rounds, checkpoint } satisfies TrainHeartbeat);
              }
            })().finally(() => (uploading = undefined));
            pending = pending.then(() => uploading);
          }
        }
        heartbeat({ round: m.round, rounds: m.rounds, checkpoint } satisfies TrainHeartbeat);
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        if (cancelled.aborted) reject(new Error('training cancelled'));
        else if (finished) resolve(finished);
        else reject(new Error(`training thread exited with code ${code}`));
      });
    });
    await pending;
    await uploading;
    return { onnx: done.onnx, testScores: done.testScores, rounds: rounds || (done.summary.trees as number) || 0, resumedFromRound, summary: done.summary };
  } finally {
    cancelled.removeEventListener('abort', onCancel);
    await worker.terminate();
  }
}

/** Stops a process group: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
function stopProcess(pid: number | undefined, graceMs = 5000): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs).unref();
}

/**
 * The external-trainer contract (examples/trainers/README.md): data as CSV by environment
 * variables, JSON lines on stdout (progress → heartbeats, checkpoints → uploaded and named in
 * heartbeats), `model.onnx` in MLOPS_OUTPUT_DIR, SIGTERM on cancellation.
 */
async function runCommandTrainer(deps: Deps, input: TrainInput, trainPath: string, testPath: string): Promise<TrainerResult> {
  const argv = input.command ? deps.config.commandTrainers[input.command] : undefined;
  if (!argv) throw dataError(`train: no command trainer named ${JSON.stringify(input.command)} on this worker (registered: ${Object.keys(deps.config.commandTrainers).join(', ') || 'none'}; see MLOPS_COMMAND_TRAINERS)`);
  return withTempDir('command-trainer', async (dir) => {
    const trainCsv = path.join(dir, 'train.csv');
    const validCsv = path.join(dir, 'valid.csv');
    await withDuckDb(async (c) => {
      await c.run(`COPY (SELECT * FROM read_parquet(${literal(trainPath)})) TO ${literal(trainCsv)} (HEADER, DELIMITER ',')`);
      await c.run(`COPY (SELECT * FROM read_parquet(${literal(testPath)})) TO ${literal(validCsv)} (HEADER, DELIMITER ',')`);
    });
    const outDir = path.join(dir, 'out');
    const checkpointDir = path.join(dir, 'checkpoints');
    await fs.mkdir(outDir);
    await fs.mkdir(checkpointDir);
    const prior = lastHeartbeat();
    let checkpoint = prior?.checkpoint;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...gpuChildEnv(),
      MLOPS_TRAIN_DATA: trainCsv,
      MLOPS_VALID_DATA: validCsv,
      MLOPS_LABEL: LABEL_COLUMN,
      MLOPS_FEATURES: JSON.stringify(input.data.features),
      MLOPS_HYPERPARAMETERS: JSON.stringify(input.hyperparameters),
      MLOPS_SEED: String(input.seed),
      MLOPS_OUTPUT_DIR: outDir,
      MLOPS_CHECKPOINT_DIR: checkpointDir,
    };
    if (checkpoint) {
      const file = path.join(checkpointDir, `resume-${checkpoint.round}`);
      await fs.writeFile(file, await readAll(await deps.artifacts.get(deps.artifacts.keyFromUri(checkpoint.uri))));
      env.MLOPS_RESUME_CHECKPOINT = file;
      log.info(`train: ${input.command} continues from its checkpoint at step ${checkpoint.round}`);
    }
    const resumedFromRound = checkpoint?.round ?? 0;
    const child = spawn(argv[0]!, argv.slice(1), { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const cancelled = Context.current().cancellationSignal;
    const onCancel = () => stopProcess(child.pid);
    cancelled.addEventListener('abort', onCancel);
    let stderrTail = '';
    child.stderr.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));
    let rounds = 0;
    let lastStep = resumedFromRound;
    let metrics: Record<string, unknown> = {};
    let pending = Promise.resolve();
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      let event: { event?: string; step?: number; total?: number; path?: string; metrics?: Record<string, unknown>; message?: string };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        log.warn(`train: ${input.command}: ignoring a stdout line that is not JSON: ${line.slice(0, 200)}`);
        return;
      }
      if (event.event === 'progress' && typeof event.step === 'number') {
        lastStep = event.step;
        rounds = typeof event.total === 'number' ? event.total : rounds;
        pending = pending.then(() => heartbeat({ round: lastStep, rounds, checkpoint } satisfies TrainHeartbeat));
      } else if (event.event === 'checkpoint' && typeof event.path === 'string') {
        const file = path.resolve(checkpointDir, event.path);
        const step = typeof event.step === 'number' ? event.step : lastStep;
        if (!file.startsWith(checkpointDir + path.sep)) {
          log.warn(`train: ${input.command}: checkpoint outside MLOPS_CHECKPOINT_DIR ignored: ${event.path}`);
          return;
        }
        pending = pending.then(async () => {
          const put = await deps.artifacts.putContent(createReadStream(file), { mediaType: 'application/octet-stream' });
          checkpoint = { uri: put.uri, sha256: put.sha256, round: step };
          heartbeat({ round: step, rounds, checkpoint } satisfies TrainHeartbeat);
        });
      } else if (event.event === 'metrics' && event.metrics && typeof event.metrics === 'object') {
        metrics = event.metrics;
      }
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    cancelled.removeEventListener('abort', onCancel);
    await pending;
    if (cancelled.aborted) throw new Error(`training cancelled (${input.command} stopped)`);
    if (code !== 0) {
      const message = `command trainer ${input.command} exited with code ${code}: ${stderrTail.trim().split('\n').slice(-5).join(' | ') || '(no stderr)'}`;
      throw new Error(message);
    }
    let onnx: Buffer;
    try {
      onnx = await fs.readFile(path.join(outDir, 'model.onnx'));
    } catch {
      throw new Error(`command trainer ${input.command} exited 0 but wrote no model.onnx in MLOPS_OUTPUT_DIR`);
    }
    return { onnx, rounds, resumedFromRound, summary: { command: input.command, metrics } };
  });
}
