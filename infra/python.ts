import { spawnSync } from 'node:child_process';
import { UserFacingError } from './errors';
import type { Logger } from './log';
import { pythonInterpreter } from './config';

/**
 * The system Python with the Debian packages the example trainers and the reference checks use
 * (never the TypeScript code): found, or installed with apt-get when we are root on Debian.
 * `debianLean` goes in without recommended packages: python3-torch recommends a toolchain and
 * test suites that the CPU trainer never loads.
 */
export const PYTHON_PACKAGES = {
  modules: ['xgboost', 'sklearn', 'pandas', 'onnx', 'scipy', 'torch'],
  debian: ['python3-xgboost', 'python3-sklearn', 'python3-pandas', 'python3-onnx', 'python3-scipy'],
  debianLean: ['python3-torch'],
};
const ALL_DEBIAN = [...PYTHON_PACKAGES.debian, ...PYTHON_PACKAGES.debianLean];

function hasModules(python: string): boolean {
  const r = spawnSync(python, ['-c', `import ${PYTHON_PACKAGES.modules.join(', ')}`], { stdio: 'ignore' });
  return r.status === 0;
}

export function ensurePythonPackages(log: Logger, env: NodeJS.ProcessEnv = process.env): string {
  const python = pythonInterpreter(env);
  if (hasModules(python)) return python;
  const canApt = process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (canApt && !env.MLOPS_PYTHON) {
    const started = performance.now();
    log.info(`installing ${ALL_DEBIAN.join(' ')} with apt-get (for the example trainers and reference checks)…`);
    const update = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'update', '-qq'], { stdio: 'ignore' });
    const aptInstall = (packages: string[], extra: string[] = []) =>
      spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '-qq', ...extra, ...packages], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } });
    let install = aptInstall(PYTHON_PACKAGES.debian);
    if (install.status === 0) install = aptInstall(PYTHON_PACKAGES.debianLean, ['--no-install-recommends']);
    if (update.status === 0 && install.status === 0 && hasModules(pythonInterpreter(env))) {
      log.info(`Python packages installed in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      return pythonInterpreter(env);
    }
    log.warn(`apt-get install failed: ${install.stderr?.toString().trim().split('\n').pop() ?? ''}`);
  }
  throw new UserFacingError(
    `${python} lacks ${PYTHON_PACKAGES.modules.join(', ')}: apt-get install ${ALL_DEBIAN.join(' ')} (or point MLOPS_PYTHON at a Python that has them)`,
  );
}
