import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { extractDemoData } from '../../client/demo/report';
import { PROJECT_ROOT } from '../../infra/paths';
import { portIsFree } from '../../infra/processes';
import { testServices } from '../helpers/real';
import { isAlive } from '../helpers/run-entry';


/**
 * `npm run demo` for real, shrunk by flags (fewer rows, shorter months, smaller monitoring
 * windows): the whole closed loop on the flights data must produce a report in which monitoring
 * asked for a retrain, and leave nothing running.
 */
test('npm run demo replays Feb–Jun, monitoring retrains, writes the report and stops everything', async () => {
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-demo-'));
  const database = `mlops_demo_test_${process.pid}`;
  const adminUrl = process.env.MLOPS_TEST_ADMIN_URL;
  if (!adminUrl) throw new Error('MLOPS_TEST_ADMIN_URL is not set: run through the integration project');
  const { PATH, HOME } = process.env;
  // With 1200 rows a month the January model's calibration gaps are 2.5, 0.4, 1.9, 2.9 and 0.4
  // points (deterministic: fixed sample and seed); 2 points makes February's labels breach.
  const args = ['run', 'demo', '--', '--rows', '1200', '--batch', '20', '--month-seconds', '12', '--period', '3', '--min-rows', '1000', '--min-labeled-rows', '300', '--calibration-gap', '0.02'];
  args.push('--train-rows', '20000', '--rounds', '15', '--bake', '3', '--timeout-minutes', '12', '--state-dir', stateDir, '--database', database);
  const started = Date.now();
  const child = spawn('npm', args, {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH, HOME, MLOPS_LOCAL_POSTGRES: adminUrl, TEMPORAL_CLI_PATH: testServices.temporalCli(), MLOPS_NVIDIA_SMI: '/nonexistent/nvidia-smi', MLOPS_LOG_LEVEL: 'WARN' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const seconds = Math.round((Date.now() - started) / 1000);
  try {
    if (code !== 0) throw new Error(`demo exited ${code} after ${seconds}s:\n${stdout}\n${stderr}`);
    // The timeline, for whoever reads a failure.
    process.stdout.write(stdout.slice(stdout.indexOf('timeline')));
    expect(stdout).toMatch(/Temporal Web UI\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/Traffic is SAMPLED: 1200 rows per month/);

    const reportPath = path.join(stateDir, 'report.html');
    expect(stdout).toContain(`report: ${reportPath}`);
    expect(existsSync(reportPath)).toBe(true);
    const data = extractDemoData(readFileSync(reportPath, 'utf8'));
    expect(data.months.map((m) => m.label)).toEqual(['Feb', 'Mar', 'Apr', 'May', 'Jun']);
    for (const m of data.months) {
      expect(m.sampledRows).toBe(1200);
      expect(m.online?.labeledRows).toBe(1200);
      expect(m.online?.auc).toEqual(expect.any(Number));
      expect(m.online?.logLoss).toEqual(expect.any(Number));
      expect(m.servedRows).toBeGreaterThanOrEqual(1200);
    }
    expect(data.versions.length).toBeGreaterThanOrEqual(2);
    expect(data.retrains[0]).toMatchObject({ source: 'demo' });
    // Every retrain after the first came from the platform, at least one from monitoring.
    expect(data.retrains.slice(1).every((r) => r.source === 'monitoring')).toBe(true);
    expect(data.retrains.some((r) => r.source === 'monitoring')).toBe(true);
    expect(data.events.some((e) => e.kind === 'training-started' && e.source === 'monitoring')).toBe(true);
    expect(data.reports.length).toBeGreaterThan(0);
    // The registry pages, exported beside the report and linked from it, show the same versions.
    const registryIndex = path.join(stateDir, 'registry', 'index.html');
    expect(stdout).toContain(`registry pages: ${registryIndex}`);
    expect(readFileSync(reportPath, 'utf8')).toContain('href="registry/index.html"');
    const modelRow = new RegExp(`<tr data-model="${data.model}">[\\s\\S]*?data-field="versions">(\\d+)<`).exec(readFileSync(registryIndex, 'utf8'));
    expect(Number(modelRow?.[1])).toBe(data.versions.length);
    expect(existsSync(path.join(stateDir, 'registry', `model-${data.model}.html`))).toBe(true);

    // Nothing left: every process the stack started has exited and its ports are free.
    const stack = JSON.parse(readFileSync(path.join(stateDir, 'stack.json'), 'utf8')) as { pids: number[]; ports: number[] };
    expect(stack.pids.length).toBe(3);
    expect(stack.pids.filter(isAlive)).toEqual([]);
    for (const port of stack.ports) expect(await portIsFree(port)).toBe(true);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    const admin = new PgClient({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`drop database if exists "${database}" with (force)`);
    await admin.end();
    await fs.rm(stateDir, { recursive: true, force: true });
  }
  process.stdout.write(`demo test: npm run demo took ${seconds}s\n`);
}, 900_000);
