import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { literal, withDuckDb } from '../../data/duck';
import { LABEL_COLUMN } from '../../data/prepare';
import { withTempDir } from '../../data/sources';
import { dataError } from '../../steps';
import { defineTrainer, type Trainer } from './types';

/**
 * External trainers: a registered command (any language) under the contract of
 * examples/trainers/README.md — data as CSV by environment variables, JSON lines on stdout
 * (progress → heartbeats, checkpoints → uploaded and named in heartbeats), `model.onnx` in
 * MLOPS_OUTPUT_DIR, SIGTERM on cancellation. Workflow inputs name a registered command, never
 * give one.
 */

/**
 * What a command trainer inherits from the worker: enough to run a program and use its GPU,
 * never the worker's secrets (database URL, S3 keys, admin tokens). Further names can be let
 * through on purpose (MLOPS_TRAINER_ENV, the plugin's `trainerEnv`).
 */
const INHERITED = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|TMPDIR|TERM|LC_[A-Z_]+|CUDA_[A-Z0-9_]+|NVIDIA_[A-Z0-9_]+|LD_LIBRARY_PATH|OMP_NUM_THREADS|MKL_NUM_THREADS|OPENBLAS_[A-Z0-9_]+|PYTHONPATH|PYTHONHOME|VIRTUAL_ENV|CONDA_[A-Z0-9_]+)$/;

export function trainerEnvironment(base: NodeJS.ProcessEnv, extra: readonly string[] = []): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && (INHERITED.test(k) || extra.includes(k))) out[k] = v;
  return out;
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

const TEST_SCORES_FILE = 'test-scores.csv';

/**
 * The trainer's own scores for the MLOPS_VALID_DATA rows: a CSV with one column (a header, then
 * one number per row, in row order), or for a multiclass task `width` columns, one probability
 * per class in MLOPS_CLASSES order. Absent when the trainer wrote none; a file of another
 * length or with a value that is not a number is the trainer's bug, and fails the step.
 */
export async function readTestScores(file: string, rows: number, name: string, width = 1): Promise<Float64Array | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const values = lines.slice(1);
  const what = width > 1 ? `${width} comma-separated class probabilities (MLOPS_CLASSES order)` : 'one score';
  const fix = { overrides: [], action: `fix the command trainer ${name}: ${what} per MLOPS_VALID_DATA row in MLOPS_TEST_SCORES, after a header line` };
  if (values.length !== rows) throw dataError(`train: ${name} wrote ${values.length} scores to MLOPS_TEST_SCORES for ${rows} MLOPS_VALID_DATA rows`, fix);
  const out = new Float64Array(rows * width);
  for (let i = 0; i < rows; i++) {
    const cells = width > 1 ? values[i]!.split(',') : [values[i]!];
    if (cells.length !== width) throw dataError(`train: ${name}'s MLOPS_TEST_SCORES line ${i + 2} has ${cells.length} values; it needs ${what}`, fix);
    cells.forEach((cell, c) => {
      const v = cell.trim();
      const x = v === '' ? NaN : Number(v);
      if (!Number.isFinite(x)) throw dataError(`train: ${name}'s MLOPS_TEST_SCORES line ${i + 2} is ${JSON.stringify(values[i]!.slice(0, 40))}, not ${width > 1 ? 'numbers' : 'a number'}`, fix);
      out[i * width + c] = x;
    });
  }
  return out;
}

export function commandTrainer(commands: Record<string, string[]>, inheritEnv: readonly string[] = []): Trainer {
  return defineTrainer<Record<string, unknown>>({
    name: 'command',
    description: `an external command registered on the worker (${Object.keys(commands).join(', ') || 'none registered'})`,
    async train(ctx) {
      const name = ctx.command;
      const argv = name ? commands[name] : undefined;
      if (!name || !argv) {
        throw dataError(`train: no command trainer named ${JSON.stringify(name)} on this worker (registered: ${Object.keys(commands).join(', ') || 'none'}; see MLOPS_COMMAND_TRAINERS)`, {
          overrides: [],
          action: `register ${JSON.stringify(name)} in MLOPS_COMMAND_TRAINERS on the training workers and restart them`,
        });
      }
      return withTempDir('command-trainer', async (dir) => {
        const trainCsv = path.join(dir, 'train.csv');
        const validCsv = path.join(dir, 'valid.csv');
        const testRows = await withDuckDb(async (c) => {
          await c.run(`COPY (SELECT * FROM read_parquet(${literal(ctx.files.train)})) TO ${literal(trainCsv)} (HEADER, DELIMITER ',')`);
          // COPY answers the rows it wrote: the count the trainer's scores must match, without reading the split again.
          const copied = await c.runAndReadAll(`COPY (SELECT * FROM read_parquet(${literal(ctx.files.test)})) TO ${literal(validCsv)} (HEADER, DELIMITER ',')`);
          return Number(copied.getRows()[0]![0]);
        });
        const outDir = path.join(dir, 'out');
        const checkpointDir = path.join(dir, 'checkpoints');
        await fs.mkdir(outDir);
        await fs.mkdir(checkpointDir);
        const env: NodeJS.ProcessEnv = {
          ...trainerEnvironment(ctx.childEnv(), inheritEnv),
          MLOPS_TRAIN_DATA: trainCsv,
          MLOPS_VALID_DATA: validCsv,
          MLOPS_LABEL: LABEL_COLUMN,
          MLOPS_TASK: ctx.task,
          ...(ctx.classes ? { MLOPS_CLASSES: JSON.stringify(ctx.classes) } : {}),
          MLOPS_FEATURES: JSON.stringify(ctx.features),
          MLOPS_HYPERPARAMETERS: JSON.stringify(ctx.hyperparameters),
          MLOPS_SEED: String(ctx.seed),
          MLOPS_OUTPUT_DIR: outDir,
          MLOPS_CHECKPOINT_DIR: checkpointDir,
          MLOPS_TEST_SCORES: path.join(outDir, TEST_SCORES_FILE),
        };
        if (ctx.resumeFrom) {
          const file = path.join(checkpointDir, `resume-${ctx.resumeFrom.round}`);
          await fs.writeFile(file, await ctx.resumeFrom.bytes());
          env.MLOPS_RESUME_CHECKPOINT = file;
          ctx.log.info(`train: ${name} continues from its checkpoint at step ${ctx.resumeFrom.round}`);
        }
        const child = spawn(argv[0]!, argv.slice(1), { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        const onCancel = () => stopProcess(child.pid);
        ctx.signal.addEventListener('abort', onCancel);
        let stderrTail = '';
        child.stderr.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));
        let rounds = 0;
        let lastStep = ctx.resumeFrom?.round ?? 0;
        let metrics: Record<string, unknown> = {};
        const lines = readline.createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          let event: { event?: string; step?: number; total?: number; path?: string; metrics?: Record<string, unknown>; message?: string };
          try {
            event = JSON.parse(line) as typeof event;
          } catch {
            ctx.log.warn(`train: ${name}: ignoring a stdout line that is not JSON: ${line.slice(0, 200)}`);
            return;
          }
          if (event.event === 'progress' && typeof event.step === 'number') {
            lastStep = event.step;
            rounds = typeof event.total === 'number' ? event.total : rounds;
            ctx.progress({ round: lastStep, rounds });
          } else if (event.event === 'checkpoint' && typeof event.path === 'string') {
            const file = path.resolve(checkpointDir, event.path);
            const step = typeof event.step === 'number' ? event.step : lastStep;
            if (!file.startsWith(checkpointDir + path.sep)) {
              ctx.log.warn(`train: ${name}: checkpoint outside MLOPS_CHECKPOINT_DIR ignored: ${event.path}`);
              return;
            }
            ctx.progress({ round: lastStep, rounds, checkpoint: async () => ({ round: step, data: await fs.readFile(file) }) });
          } else if (event.event === 'metrics' && event.metrics && typeof event.metrics === 'object') {
            metrics = event.metrics;
          }
        });
        const code = await new Promise<number | null>((resolve, reject) => {
          child.on('error', reject);
          child.on('close', (c) => resolve(c));
        });
        ctx.signal.removeEventListener('abort', onCancel);
        if (ctx.signal.aborted) throw new Error(`training cancelled (${name} stopped)`);
        if (code !== 0) throw new Error(`command trainer ${name} exited with code ${code}: ${stderrTail.trim().split('\n').slice(-5).join(' | ') || '(no stderr)'}`);
        let onnx: Buffer;
        try {
          onnx = await fs.readFile(path.join(outDir, 'model.onnx'));
        } catch {
          throw new Error(`command trainer ${name} exited 0 but wrote no model.onnx in MLOPS_OUTPUT_DIR`);
        }
        const testScores = await readTestScores(path.join(outDir, TEST_SCORES_FILE), testRows, name, ctx.classes?.length ?? 1);
        if (!testScores) ctx.log.warn(`train: ${name} wrote no scores to MLOPS_TEST_SCORES: its model cannot pass the ONNX parity gate`);
        return { onnx, rounds, summary: { command: name, metrics }, ...(testScores ? { testScores } : {}) };
      });
    },
  });
}
