import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { INSTALLED_AS_DEPENDENCY, PROJECT_ROOT } from './paths';

const cache = new Map<string, string>();

/**
 * The code version recorded in lineage and step-cache keys: MLOPS_CODE_VERSION (a Docker build
 * argument, since images carry no .git), else the git commit of the checkout with `+dirty` when
 * files differ from it, else the package version — always the package version when we are
 * installed as a dependency (the git repository around us is the user's, not ours).
 */
export function codeVersion(explicit?: string, root: string = PROJECT_ROOT): string {
  if (explicit) return explicit;
  const hit = cache.get(root);
  if (hit) return hit;
  const pkg = () => `pkg:${(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version}`;
  let version: string;
  if (root === PROJECT_ROOT && INSTALLED_AS_DEPENDENCY) {
    version = pkg();
  } else {
    try {
      const git = (...args: string[]) => execFileSync('git', args, { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
      const sha = git('rev-parse', '--short=12', 'HEAD');
      version = `git:${sha}${git('status', '--porcelain') ? '+dirty' : ''}`;
    } catch {
      version = pkg();
    }
  }
  cache.set(root, version);
  return version;
}
