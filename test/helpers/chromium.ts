import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, ensureDebianTool } from '../../infra/debian-tools';
import { createLogger } from '../../infra/log';

/**
 * Debian's Chromium, headless, as a person's browser: the DOM after it rendered a page, and a
 * screenshot of it. Each call is a fresh profile (no cookies carried between calls).
 */

function run(args: string[], timeoutMs = 60_000): Promise<string> {
  const chromium = ensureDebianTool(CHROMIUM, createLogger('test'));
  const profile = mkdtempSync(path.join(os.tmpdir(), 'chromium-'));
  return new Promise((resolve, reject) => {
    const child = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${profile}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rmSync(profile, { recursive: true, force: true });
      if (code === 0) resolve(out);
      else reject(new Error(`chromium ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
    });
  });
}

export const dumpDom = (url: string) => run(['--dump-dom', url]);

export const screenshot = (url: string, file: string, size = '1280,2200') => run([`--screenshot=${file}`, `--window-size=${size}`, url]);
