import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './paths';

let cached: string | undefined;

/**
 * The code version recorded in lineage and step-cache keys: MLOPS_CODE_VERSION, else the git
 * commit of the checkout, else the package version.
 */
export function codeVersion(explicit?: string): string {
  if (explicit) return explicit;
  if (cached) return cached;
  try {
    cached = `git:${execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()}`;
  } catch {
    const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    cached = `pkg:${pkg.version}`;
  }
  return cached;
}
