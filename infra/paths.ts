import os from 'node:os';
import path from 'node:path';

/** The repository root (this file lives in infra/). */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

export function defaultStateDir(): string {
  return path.join(PROJECT_ROOT, '.state');
}

/** Project-local, git-ignored bin folder that provisioning fills with links to built tools. */
export function defaultProjectBinDir(): string {
  return path.join(PROJECT_ROOT, '.bin');
}

/**
 * Machine-wide cache of built binaries, outside the checkout so that a fresh clone (CI) on the
 * same machine finds them without rebuilding.
 */
export function defaultToolCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'temporal-mlops', 'bin');
}
