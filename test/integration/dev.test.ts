import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as Minio from 'minio';
import { PROJECT_ROOT } from '../../infra/paths';
import { canConnect } from '../../infra/processes';
import { testServices } from '../helpers/real';
import { isAlive } from '../helpers/run-entry';
import { call, oipClient } from '../helpers/oip-grpc-client';

const exec = promisify(execFile);

async function waitForScheduledRun(temporal: string, address: string): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const { stdout } = await exec(temporal, ['workflow', 'list', '--address', address, '--query', "WorkflowType='continuousTraining' AND WorkflowId STARTS_WITH 'nightly-flights-delay'", '-o', 'json']);
    const runs = stdout.trim() ? (JSON.parse(stdout) as Array<{ execution: { workflowId: string } }>) : [];
    if (runs.length) return runs[0]!.execution.workflowId;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the schedule started no continuousTraining run');
}


async function waitForText(read: () => string, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${read().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function listObjects(s3: Minio.Client, bucket: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const names: string[] = [];
    s3.listObjectsV2(bucket, '', true)
      .on('data', (o) => names.push(o.name!))
      .on('error', reject)
      .on('end', () => resolve(names));
  });
}

async function processesMentioning(text: string): Promise<Array<{ pid: number; args: string }>> {
  const { stdout } = await exec('ps', ['-eo', 'pid=,args=']);
  return stdout
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[2]!.includes(text) && !m[2]!.startsWith('ps '))
    .map((m) => ({ pid: Number(m[1]), args: m[2]! }));
}

test('npm run dev serves platformCheck from the Temporal CLI, shows it in the Web UI, and Ctrl-C leaves no process', async () => {
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-dev-'));
  const { PATH, HOME } = process.env;
  const child = spawn('npm', ['run', 'dev', '--', '--s3', '--temporal', 'start'], {
    cwd: PROJECT_ROOT,
    // Its own process group, like a terminal's foreground job: Ctrl-C goes to the whole group.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH,
      HOME,
      DATABASE_URL: testServices.databaseUrl(),
      MLOPS_STATE_DIR: stateDir,
      TEMPORAL_CLI_PATH: testServices.temporalCli(),
      MINIO_SERVER_PATH: testServices.minioBinary(),
      MLOPS_NVIDIA_SMI: '/nonexistent/nvidia-smi',
      MLOPS_LOG_LEVEL: 'WARN',
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let pgid = child.pid!;

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`dev did not come up in 150 s:\n${stdout}\n${stderr}`)), 150_000);
      const check = () => {
        if (/Ctrl-C stops everything/.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', check);
      void exited.then((code) => reject(new Error(`dev exited early (${code}):\n${stdout}\n${stderr}`)));
    });
    const grpc = /Temporal gRPC\s+(\S+)/.exec(stdout)![1]!;
    const ui = /Temporal Web UI\s+(\S+)/.exec(stdout)![1]!;
    expect(stdout).toMatch(/PostgreSQL\s+postgres:\/\/\S+\/mlops_test_/);
    expect(stdout).toMatch(/Artifacts\s+s3:\/\/mlops-artifacts/);
    expect(stdout).toMatch(/S3 endpoint\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/Workers\s+mlops-control, mlops-cpu, mlops-gpu/);

    // Exactly the README's command, pointed at the printed address.
    const temporal = testServices.temporalCli();
    const workflowId = `readme-platform-check-${Date.now()}`;
    await exec(temporal, ['workflow', 'start', '--address', grpc, '--task-queue', 'mlops-control', '--type', 'platformCheck', '--input', '{}', '--workflow-id', workflowId]);
    const { stdout: resultJson } = await exec(temporal, ['workflow', 'result', '--address', grpc, '--workflow-id', workflowId, '-o', 'json'], { timeout: 120_000 });
    const result = JSON.parse(resultJson);
    expect(result.status).toBe('COMPLETED');
    const payload = result.closeEvent.workflowExecutionCompletedEventAttributes.result[0];
    expect(payload.ok).toBe(true);
    const workers = Object.fromEntries(payload.queues.map((q: { queue: string; result: { worker: string } }) => [q.queue, q.result.worker]));
    expect(workers).toEqual({
      'mlops-control': expect.stringMatching(/^mlops-control@/),
      'mlops-cpu': expect.stringMatching(/^mlops-cpu@/),
      'mlops-gpu': expect.stringMatching(/^mlops-gpu@/),
    });

    // The README's continuous-training commands, as written: start, query status, result.
    const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const ctInput = /--type continuousTraining --workflow-id train-flights-jan \\\n\s+--input '([^']+)'/.exec(readme)?.[1];
    expect(ctInput).toBeDefined();
    await exec(temporal, ['workflow', 'start', '--address', grpc, '--task-queue', 'mlops-control', '--type', 'continuousTraining', '--workflow-id', 'train-flights-jan', '--input', ctInput!]);
    const { stdout: ctJson } = await exec(temporal, ['workflow', 'result', '--address', grpc, '--workflow-id', 'train-flights-jan', '-o', 'json'], { timeout: 170_000 });
    const ct = JSON.parse(ctJson);
    expect(ct.status).toBe('COMPLETED');
    expect(ct.closeEvent.workflowExecutionCompletedEventAttributes.result[0]).toMatchObject({ model: 'flights-delay', status: 'registered', version: 1 });
    const { stdout: statusJson } = await exec(temporal, ['workflow', 'query', '--address', grpc, '--workflow-id', 'train-flights-jan', '--name', 'status', '-o', 'json']);
    const st = JSON.parse(statusJson).queryResult[0];
    expect(st.state).toBe('succeeded');
    expect(st.steps.map((x: { name: string; state: string }) => `${x.name}:${x.state}`)).toEqual(
      ['snapshot', 'validate-data', 'prepare', 'train', 'evaluate', 'validate-model', 'register'].map((n) => `${n}:succeeded`),
    );
    // The README's schedule starts a run when triggered.
    const schedule = /(temporal schedule create [^\n]+\\\n[^\n]+\\\n\s+--input '[^']+')/.exec(readme)?.[1];
    expect(schedule).toBeDefined();
    const scheduleArgs = [...schedule!.replace(/\\\n\s*/g, ' ').matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(1);
    await exec(temporal, [...scheduleArgs, '--address', grpc]);
    await exec(temporal, ['schedule', 'trigger', '--address', grpc, '--schedule-id', 'nightly-flights-delay']);
    const scheduled = await waitForScheduledRun(temporal, grpc);
    expect(scheduled).toMatch(/^nightly-flights-delay-/);
    await exec(temporal, ['schedule', 'delete', '--address', grpc, '--schedule-id', 'nightly-flights-delay']);
    await exec(temporal, ['workflow', 'terminate', '--address', grpc, '--workflow-id', scheduled, '--reason', 'test done']);

    // The model server dev runs reads the same store: the version just trained promotes and
    // serves, with no variable set by hand.
    const serveUrl = /Model server\s+(\S+)/.exec(stdout)![1]!;
    expect(stdout).toMatch(/MinIO keys\s+access \S+, secret \S+/);
    const promotionInput = JSON.stringify({ model: 'flights-delay', version: 1, strategy: 'direct', loadTest: { seconds: 1, concurrency: 2 }, gates: { maxP99Ms: 2000 } });
    const { stdout: promoJson } = await exec(temporal, ['workflow', 'execute', '--address', grpc, '--task-queue', 'mlops-control', '--type', 'promotion', '--workflow-id', 'promotion-flights-delay', '--input', promotionInput, '-o', 'json'], { timeout: 170_000 });
    const promo = JSON.parse(promoJson);
    expect(promo.closeEvent.workflowExecutionCompletedEventAttributes.result[0]).toMatchObject({ outcome: 'promoted', candidate: 1 });
    const meta = (await (await fetch(`${serveUrl}/v2/models/flights-delay`)).json()) as { inputs: Array<{ name: string; datatype: string }> };
    const infer = await fetch(`${serveUrl}/v2/models/flights-delay/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: meta.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: [1, 1], data: [i.datatype === 'BYTES' ? 'ORD' : 10] })) }),
    });
    expect(infer.status).toBe(200);
    expect(((await infer.json()) as { model_version: string }).model_version).toBe('1');
    // And over OIP gRPC, where dev printed it.
    const grpcTarget = /OIP gRPC\s+(\S+)/.exec(stdout)![1]!;
    const grpcClient = oipClient(grpcTarget);
    try {
      const inputs = meta.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: [1, 1], contents: i.datatype === 'BYTES' ? { bytes_contents: [Buffer.from('ORD')] } : i.datatype === 'INT64' ? { int64_contents: [978_717_600] } : { fp32_contents: [10] } }));
      const reply = await call<{ model_version: string; outputs: unknown[] }>(grpcClient, 'ModelInfer', { model_name: 'flights-delay', inputs });
      expect(reply.model_version).toBe('1');
      expect(reply.outputs).toHaveLength(1);
    } finally {
      grpcClient.close();
    }

    // The Web UI that dev printed knows the run.
    const res = await fetch(`${ui}/api/v1/namespaces/default/workflows/${workflowId}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(workflowId);

    // kill -9 of a service dev started: it says which died, starts it again on the same port
    // and data, and the stack goes on (the history and the objects are still there).
    const s3Endpoint = /S3 endpoint\s+(\S+)/.exec(stdout)![1]!;
    const [, accessKey, secretKey] = /MinIO keys\s+access (\S+), secret (\S+)/.exec(stdout)!;
    const s3 = new Minio.Client({ endPoint: '127.0.0.1', port: Number(new URL(s3Endpoint).port), useSSL: false, accessKey: accessKey!, secretKey: secretKey! });
    const objectsBefore = (await listObjects(s3, 'mlops-artifacts')).sort();
    expect(objectsBefore.length).toBeGreaterThan(0);
    for (const [service, marker] of [['Temporal dev server', 'start-dev'], ['MinIO', 'minio server']] as const) {
      const [victim] = (await processesMentioning(stateDir)).filter((p) => p.args.includes(marker));
      process.kill(victim!.pid, 'SIGKILL');
      await waitForText(() => stderr, new RegExp(`${service} \\(pid ${victim!.pid}\\) exited \\(signal SIGKILL\\); restarting it`), 30_000);
      await waitForText(() => stderr, new RegExp(`${service} restarted \\(pid \\d+\\)`), 90_000);
      const [again] = (await processesMentioning(stateDir)).filter((p) => p.args.includes(marker));
      expect(again!.pid).not.toBe(victim!.pid);
    }
    const { stdout: kept } = await exec(temporal, ['workflow', 'describe', '--address', grpc, '--workflow-id', 'train-flights-jan', '-o', 'json'], { timeout: 60_000 });
    expect(JSON.parse(kept).workflowExecutionInfo.status).toBe('WORKFLOW_EXECUTION_STATUS_COMPLETED');
    expect((await listObjects(s3, 'mlops-artifacts')).sort()).toEqual(objectsBefore);
    const afterId = `after-restart-${Date.now()}`;
    const { stdout: afterJson } = await exec(temporal, ['workflow', 'execute', '--address', grpc, '--task-queue', 'mlops-control', '--type', 'platformCheck', '--input', '{}', '--workflow-id', afterId, '-o', 'json'], { timeout: 120_000 });
    expect(JSON.parse(afterJson).closeEvent.workflowExecutionCompletedEventAttributes.result[0].ok).toBe(true);

    // Everything dev started, before Ctrl-C.
    const started = [...(await processesMentioning(stateDir))];
    expect(started.some((p) => p.args.includes('start-dev'))).toBe(true);
    expect(started.some((p) => p.args.includes('minio server'))).toBe(true);
    const { stdout: group } = await exec('ps', ['-eo', 'pid=,pgid=']);
    const groupPids = group
      .split('\n')
      .map((l) => l.trim().split(/\s+/).map(Number))
      .filter(([, g]) => g === pgid)
      .map(([p]) => p!);
    const all = [...new Set([...started.map((p) => p.pid), ...groupPids])];

    process.kill(-pgid, 'SIGINT');
    pgid = 0;
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000).unref())]);
    expect(code).not.toBe('timeout');
    // npm may return before its child finishes stopping the servers; give the stop its grace time.
    const deadline = Date.now() + 30_000;
    while (all.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(all.filter(isAlive)).toEqual([]);
    expect(await processesMentioning(stateDir)).toEqual([]);
    expect(await canConnect(grpc.split(':')[0]!, Number(grpc.split(':')[1]))).toBe(false);
    expect(stderr).toMatch(/SIGINT: stopping workers and services/);
  } finally {
    if (pgid) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const p of await processesMentioning(stateDir)) process.kill(p.pid, 'SIGKILL');
    await fs.rm(stateDir, { recursive: true, force: true });
  }
});
