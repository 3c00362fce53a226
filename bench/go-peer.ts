import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { findGo } from '../infra/binaries';
import { PROJECT_ROOT } from '../infra/paths';

const run = promisify(execFile);

const peerOutput = z.object({ steps: z.number().int(), perActivityMs: z.array(z.number()), medianMs: z.number() });
export type GoPeerFigures = z.output<typeof peerOutput>;

/**
 * The same sequential no-op activity chain as ours, from a worker on the Go SDK
 * (bench/go-peer, built here with the machine's Go toolchain) against the same server: the
 * anchor that says which part of a round trip is the server's and which is our worker's.
 */
export async function goPeerRoundTrip(opts: { address: string; namespace: string; buildDir: string; steps: number; runs: number }): Promise<GoPeerFigures> {
  const go = await findGo();
  if (!go) throw new Error('the Go peer needs the Go toolchain (go on PATH or /usr/local/go/bin/go); npm run setup builds Temporal with the same one');
  const binary = path.join(opts.buildDir, 'go-peer');
  await run(go, ['build', '-o', binary, '.'], { cwd: path.join(PROJECT_ROOT, 'bench', 'go-peer'), maxBuffer: 16 << 20, timeout: 600_000 });
  const { stdout } = await run(binary, ['-address', opts.address, '-namespace', opts.namespace, '-steps', String(opts.steps), '-runs', String(opts.runs)], { maxBuffer: 1 << 20, timeout: 300_000 });
  return peerOutput.parse(JSON.parse(stdout.trim().split('\n').pop() ?? ''));
}
