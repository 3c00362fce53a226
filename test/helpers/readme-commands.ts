import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { PROJECT_ROOT } from '../../infra/paths';
import { testServices } from './real';

/**
 * README command blocks run as written: a block is the ```sh fence after an HTML comment
 * marker, each line runs in bash with the Temporal CLI the tests use on PATH and pointed at the
 * test's own server (TEMPORAL_ADDRESS), like a user's shell pointed at theirs.
 */

const execFileP = promisify(execFile);

/** The commands of the block after `<!-- marker -->`, one per entry (continuation lines joined). */
export function readmeBlock(marker: string): string[] {
  const readme = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- ${marker} -->`);
  if (at < 0) throw new Error(`README has no <!-- ${marker} --> block`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))![1]!;
  return block.replace(/\\\n\s*/g, '').split('\n').filter((l) => l.trim() !== '');
}

/** Runs one README line; a failure carries the command and what it printed. */
export async function runReadmeLine(line: string, env: TestWorkflowEnvironment): Promise<string> {
  try {
    const { stdout } = await execFileP('bash', ['-o', 'pipefail', '-c', line], {
      env: { ...process.env, PATH: `${path.dirname(testServices.temporalCli())}:${process.env.PATH}`, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default' },
      timeout: 60_000,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`README command failed: ${line}\n${e.stderr ?? ''}${e.stdout ?? ''}${e.message}`);
  }
}
