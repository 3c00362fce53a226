import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { UserFacingError } from './errors';
import type { Logger } from './log';

/**
 * Debian's tools that the tests and benchmarks use as users run them (never the TypeScript
 * code): found on the usual paths, or installed with apt-get when we are root on Debian.
 */
export interface DebianTool {
  command: string;
  package: string;
  why: string;
}

export const PROMTOOL: DebianTool = { command: 'promtool', package: 'prometheus', why: 'lints every /metrics endpoint in the tests' };
export const PROMETHEUS: DebianTool = { command: 'prometheus', package: 'prometheus', why: 'the alerting test runs the shipped rules in a real Prometheus' };
export const ALERTMANAGER: DebianTool = { command: 'prometheus-alertmanager', package: 'prometheus-alertmanager', why: 'the alerting test routes real alerts to the webhook' };

export const JQ: DebianTool = { command: 'jq', package: 'jq', why: "the README's operator commands read the run's status with it, and a test runs them" };

export const CHROMIUM: DebianTool = { command: 'chromium', package: 'chromium', why: 'the registry page test loads every view in headless Chromium' };

function find(command: string): string | undefined {
  return ['/usr/bin', '/usr/local/bin'].map((d) => `${d}/${command}`).find((p) => existsSync(p));
}

export function ensureDebianTool(tool: DebianTool, log: Logger, env: NodeJS.ProcessEnv = process.env): string {
  const found = find(tool.command);
  if (found) return found;
  if (process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
    // Another apt-get (unattended upgrades, a parallel setup) may hold dpkg's lock for a while: wait for it.
    log.info(`installing ${tool.package} with apt-get (${tool.command}: ${tool.why})…`);
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'update', '-qq'], { stdio: 'ignore' });
    const install = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '-qq', tool.package], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } });
    const now = find(tool.command);
    if (now) return now;
    log.warn(`apt-get install ${tool.package} failed: ${install.stderr?.toString().trim().split('\n').pop() ?? ''}`);
  }
  throw new UserFacingError(`${tool.command} is not installed (${tool.why}): apt-get install ${tool.package}`);
}
