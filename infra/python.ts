import { spawnSync } from 'node:child_process';
import { UserFacingError } from './errors';
import type { Logger } from './log';
import { pythonInterpreter } from './config';

/**
 * The system Python with the Debian packages the example trainer and the reference checks use
 * (never the TypeScript code): found, or installed with apt-get when we are root on Debian.
 */
export const PYTHON_PACKAGES = { modules: ['xgboost', 'sklearn', 'pandas', 'onnx', 'scipy'], debian: ['python3-xgboost', 'python3-sklearn', 'python3-pandas', 'python3-onnx', 'python3-scipy'] };

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
    log.info(`installing ${PYTHON_PACKAGES.debian.join(' ')} with apt-get (for the example trainer and reference checks)…`);
    const update = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'update', '-qq'], { stdio: 'ignore' });
    const install = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '-qq', ...PYTHON_PACKAGES.debian], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (update.status === 0 && install.status === 0 && hasModules(pythonInterpreter(env))) {
      log.info(`Python packages installed in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      return pythonInterpreter(env);
    }
    log.warn(`apt-get install failed: ${install.stderr?.toString().trim().split('\n').pop() ?? ''}`);
  }
  throw new UserFacingError(
    `${python} lacks ${PYTHON_PACKAGES.modules.join(', ')}: apt-get install ${PYTHON_PACKAGES.debian.join(' ')} (or point MLOPS_PYTHON at a Python that has them)`,
  );
}
