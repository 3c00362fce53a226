import { spawn } from 'node:child_process';
import { PROMTOOL, ensureDebianTool } from '../../infra/debian-tools';
import { createLogger } from '../../infra/log';

/** `promtool check metrics` (Debian's, as users run it; the test setup installs it) on an exposition. */
export function checkMetrics(text: string): Promise<{ code: number | null; output: string }> {
  const promtool = ensureDebianTool(PROMTOOL, createLogger('test'));
  return new Promise((resolve, reject) => {
    const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
