import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { compiledEntry } from '../../infra/entry';
import { PROJECT_ROOT } from '../../infra/paths';
import { testEnv } from './real';

export interface EntryResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its exit, collecting its output; killed (and the promise rejected) past the timeout. */
export function runProcess(command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<EntryResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(command)} ${args.join(' ')} did not exit within ${opts.timeoutMs} ms; stderr: ${stderr}`));
    }, opts.timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs an entry point (`workers/control.ts`, …) from the compiled package in a fresh Node process, as npm scripts do. */
export function runEntry(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<EntryResult> {
  return runProcess(process.execPath, [compiledEntry(file), ...args], { cwd: PROJECT_ROOT, env, timeoutMs });
}

/** Whether a process with this pid still exists (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The lines an entry point printed at ERROR level or as its final `error:` line. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('error:') || l.startsWith('unexpected error:'));
}

/**
 * Worker processes a crash test starts in process groups of their own (so `kill -9` of the
 * group takes the training thread too), with the tail of their stderr for failure messages.
 */
export function workerGroup(): { start(args: string[], env: NodeJS.ProcessEnv): ChildProcess; killAll(): void; log(): string } {
  const children: ChildProcess[] = [];
  let log = '';
  return {
    start(args, env) {
      const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-5000)));
      children.push(child);
      return child;
    },
    killAll() {
      for (const c of children) {
        if (c.exitCode !== null || c.signalCode !== null) continue;
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          // exited between the check and the kill
        }
      }
    },
    log: () => log,
  };
}

/**
 * Our dev worker (workers/dev.ts, compiled) on the control, cpu and gpu queues with `--allow-cpu`,
 * in `group`, against a test's Temporal server and stores: the worker a crash test kills.
 */
export function startDevWorker(
  group: ReturnType<typeof workerGroup>,
  temporal: { address: string; namespace?: string },
  bucket: string,
  extraEnv: NodeJS.ProcessEnv = {},
): ChildProcess {
  return group.start([compiledEntry('workers/dev.ts'), '--queues', 'control,cpu,gpu', '--allow-cpu'], {
    ...process.env,
    ...testEnv(bucket),
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace ?? 'default',
    MLOPS_LOG_LEVEL: 'WARN',
    ...extraEnv,
  });
}
