import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The package's own folder: the one holding our package.json, found by walking up from this
 * file, so that it is the same from the TypeScript sources (infra/) and from the compiled
 * output (dist/infra/), in a checkout or installed under node_modules.
 */
function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'temporal-mlops') return dir;
      } catch {
        // not ours; keep walking
      }
    }
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}

export const PROJECT_ROOT = findPackageRoot(__dirname);

/** Installed as a dependency: state, tools and local data belong to the user's project, not to node_modules. */
export const INSTALLED_AS_DEPENDENCY = PROJECT_ROOT.split(path.sep).includes('node_modules');

/** Where local state and tools go: the checkout, or the current folder when installed as a dependency. */
function workingRoot(): string {
  return INSTALLED_AS_DEPENDENCY ? process.cwd() : PROJECT_ROOT;
}

export function defaultStateDir(): string {
  return path.join(workingRoot(), '.state');
}

/** Project-local, git-ignored bin folder that provisioning fills with links to built tools. */
export function defaultProjectBinDir(): string {
  return path.join(workingRoot(), '.bin');
}

/** Folders that `file://` dataset URIs may point into when MLOPS_DATA_ROOTS is unset. */
export function defaultDataRoots(): string[] {
  return [...new Set([workingRoot(), PROJECT_ROOT, os.tmpdir()])];
}

/**
 * Machine-wide cache of built binaries, outside the checkout so that a fresh clone (CI) on the
 * same machine finds them without rebuilding.
 */
export function defaultToolCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'temporal-mlops', 'bin');
}
