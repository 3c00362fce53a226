import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { freePort } from '../../infra/processes';
import { PROJECT_ROOT } from '../../infra/paths';
import { createTemporalEnv, independentPg, testServices } from '../helpers/real';
import { waitFor } from '../helpers/wait';

/**
 * A team's own project adopting the package as a user would: `npm pack`, install the tarball
 * into a clean folder holding examples/consumer, start that project's worker (its own queue
 * names, its own PostgreSQL schema, a workflow of its own) and the packaged model server, then
 * drive our workflows with the `temporal` CLI and plain JSON. Everything runs with plain node.
 */

const exec = promisify(execFile);
const PREFIX = `acme${randomUUID().slice(0, 6)}`;
const SCHEMA = `acme_${randomUUID().slice(0, 8).replace(/-/g, '')}`;
const MODEL = `acme-delay-${randomUUID().slice(0, 6)}`;
const TOKEN = randomBytes(24).toString('base64url');
const BUCKET = `consumer-${randomUUID().slice(0, 8)}`;
const LIGHT = { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 3000, hyperparameters: { rounds: 5 }, resources: { gpu: 0 }, gates: { minAuc: 0.5 } };

let env: TestWorkflowEnvironment;
let dir: string;
let servePort: number;
const children: ChildProcess[] = [];
const logs: Record<string, string> = {};

function start(name: string, command: string, args: string[], extraEnv: NodeJS.ProcessEnv): ChildProcess {
  const { PATH, HOME } = process.env;
  const child = spawn(command, args, { cwd: path.join(dir, 'consumer'), env: { PATH, HOME, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  logs[name] = '';
  child.stdout!.on('data', (d: Buffer) => (logs[name] += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs[name] += d.toString()));
  children.push(child);
  return child;
}

async function temporal(args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await exec(testServices.temporalCli(), [...args, '--address', env.address], { timeout: timeoutMs });
  return stdout;
}

/** Starts a workflow with the CLI and returns its result payload, failing with the server's view if it did not complete. */
async function runWithCli(type: string, workflowId: string, input: unknown, timeoutMs: number): Promise<Record<string, unknown>> {
  await temporal(['workflow', 'start', '--type', type, '--task-queue', `${PREFIX}-control`, '--workflow-id', workflowId, '--input', JSON.stringify(input)]);
  const result = JSON.parse(await temporal(['workflow', 'result', '--workflow-id', workflowId, '-o', 'json'], timeoutMs));
  if (result.status !== 'COMPLETED') throw new Error(`${workflowId}: ${JSON.stringify(result)}\nworker log:\n${logs.worker}`);
  return result.closeEvent.workflowExecutionCompletedEventAttributes.result[0];
}

beforeAll(async () => {
  env = await createTemporalEnv();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-consumer-'));
  // The build is what `npm test` just made; --ignore-scripts keeps pack from rebuilding dist
  // under the feet of other test files running from it.
  const { stdout } = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: PROJECT_ROOT, maxBuffer: 64 * 1024 * 1024 });
  const tarball = path.join(dir, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  await fs.cp(path.join(PROJECT_ROOT, 'examples', 'consumer'), path.join(dir, 'consumer'), { recursive: true });
  await exec('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', tarball], {
    cwd: path.join(dir, 'consumer'),
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    timeout: 420_000,
    maxBuffer: 64 * 1024 * 1024,
  });
}, 480_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await env?.teardown();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  const pg = await independentPg();
  try {
    await pg.query(`drop schema if exists "${SCHEMA}" cascade`);
  } finally {
    await pg.end();
  }
});

test('the packed package installs into a clean folder and loads with plain node, by require and by import', async () => {
  const cwd = path.join(dir, 'consumer');
  const installed = JSON.parse(await fs.readFile(path.join(cwd, 'node_modules', 'temporal-mlops', 'package.json'), 'utf8'));
  expect(installed.peerDependencies['@temporalio/worker']).toBeDefined();
  // No TypeScript in the package's run-time files, and no TypeScript loader among its dependencies.
  expect(installed.dependencies.tsx).toBeUndefined();
  const cjs = await exec(process.execPath, ['-e', "const m = require('temporal-mlops'); const { SimplePlugin } = require('@temporalio/plugin'); const p = new m.MlopsPlugin({ database: { url: 'postgres://nobody@127.0.0.1:1/none' } }); console.log(JSON.stringify({ simple: p instanceof SimplePlugin, name: p.name, client: typeof require('temporal-mlops/client').MlopsClient, wf: typeof require('temporal-mlops/workflows').continuousTraining, serve: typeof require('temporal-mlops/model-server').startModelServer }))"], { cwd });
  expect(JSON.parse(cjs.stdout)).toEqual({ simple: true, name: 'temporal-mlops', client: 'function', wf: 'function', serve: 'function' });
  const esm = await exec(process.execPath, ['--input-type=module', '-e', "import { MlopsPlugin } from 'temporal-mlops'; import { SimplePlugin } from '@temporalio/plugin'; import { MlopsClient } from 'temporal-mlops/client'; console.log(JSON.stringify({ simple: new MlopsPlugin({ database: { url: 'postgres://nobody@127.0.0.1:1/none' } }) instanceof SimplePlugin, client: typeof MlopsClient }))"], { cwd });
  expect(JSON.parse(esm.stdout)).toEqual({ simple: true, client: 'function' });
  // A worker of ours with no metadata store stops with one line.
  const noStore = await exec(process.execPath, [path.join(cwd, 'node_modules', 'temporal-mlops', 'dist', 'workers', 'control.js')], { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME } }).catch((e: { code: number; stderr: string }) => e);
  expect((noStore as { code: number }).code).toBe(2);
  expect((noStore as { stderr: string }).stderr.trim().split('\n')).toEqual([expect.stringMatching(/^error: no metadata store: set DATABASE_URL/)]);
});

test("the consumer's worker trains and promotes with its own queues and schema, driven by the temporal CLI; the packaged model server answers", async () => {
  servePort = await freePort();
  const stores = {
    DATABASE_URL: testServices.databaseUrl(),
    ARTIFACT_ROOT: `s3://${BUCKET}/artifacts`,
    S3_ENDPOINT: testServices.s3Endpoint(),
    AWS_ACCESS_KEY_ID: testServices.s3AccessKey(),
    AWS_SECRET_ACCESS_KEY: testServices.s3SecretKey(),
    MLOPS_STATE_DIR: path.join(dir, 'state'),
  };
  start('serve', path.join(dir, 'consumer', 'node_modules', '.bin', 'mlops-serve'), [], {
    ...stores,
    MLOPS_DB_SCHEMA: SCHEMA,
    MLOPS_ADMIN_TOKEN: TOKEN,
    MLOPS_SERVE_PORT: String(servePort),
  });
  start('worker', process.execPath, ['worker.js'], {
    ...stores,
    TEMPORAL_ADDRESS: env.address,
    ACME_QUEUE_PREFIX: PREFIX,
    ACME_DB_SCHEMA: SCHEMA,
    ACME_MODEL_SERVER_URL: `http://127.0.0.1:${servePort}`,
    ACME_MODEL_SERVER_TOKEN: TOKEN,
    MLOPS_NVIDIA_SMI: '/nonexistent/nvidia-smi',
    MLOPS_LOG_LEVEL: 'WARN',
  });
  await waitFor('model server ready', async () => ((await fetch(`http://127.0.0.1:${servePort}/v2/health/ready`)).ok ? true : undefined), 60_000);
  // The server's own view: pollers on the consumer's queues, not ours.
  await waitFor(
    "pollers on the consumer's queues",
    async () => {
      for (const q of ['control', 'cpu', 'gpu']) {
        const d = JSON.parse(await temporal(['task-queue', 'describe', '--task-queue', `${PREFIX}-${q}`, '-o', 'json']));
        if (!JSON.stringify(d).includes(`${PREFIX}-${q}@`)) return undefined;
      }
      return true;
    },
    120_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nworker log:\n${logs.worker}`);
  });

  const trained = await runWithCli('continuousTraining', `train-${MODEL}`, { model: MODEL, ...LIGHT }, 240_000);
  expect(trained).toMatchObject({ model: MODEL, status: 'registered', version: 1 });
  const promoted = await runWithCli('promotion', `promotion-${MODEL}`, { model: MODEL, version: 1, strategy: 'direct', contractRows: 50, loadTest: { seconds: 1, concurrency: 2 }, gates: { maxP99Ms: 2000 } }, 180_000);
  expect(promoted).toMatchObject({ outcome: 'promoted', candidate: 1 });

  // The consumer's own workflow, bundled beside ours, runs our training as a child.
  const own = await runWithCli('acmeWeeklyModel', `weekly-${MODEL}`, { model: MODEL, ...LIGHT }, 240_000);
  expect(own).toMatchObject({ model: MODEL, version: 2, status: 'registered' });

  const pg = await independentPg();
  try {
    const production = await pg.query(
      `select mv.version from "${SCHEMA}".model_aliases a join "${SCHEMA}".models m on m.id = a.model_id join "${SCHEMA}".model_versions mv on mv.id = a.model_version_id where m.name = $1 and a.alias = 'production'`,
      [MODEL],
    );
    expect(production.rows).toEqual([{ version: 1 }]);
    const versions = await pg.query(`select count(*)::int as n from "${SCHEMA}".model_versions mv join "${SCHEMA}".models m on m.id = mv.model_id where m.name = $1`, [MODEL]);
    expect(versions.rows[0].n).toBe(2);
    // Nothing of this model anywhere else: not in public, not in the default schema.
    const elsewhere = await pg.query(`select table_schema from information_schema.tables where table_name = 'models' and table_schema <> $1`, [SCHEMA]);
    for (const { table_schema } of elsewhere.rows) {
      const n = await pg.query(`select count(*)::int as n from "${table_schema}".models where name = $1`, [MODEL]);
      expect({ schema: table_schema, n: n.rows[0].n }).toEqual({ schema: table_schema, n: 0 });
    }
  } finally {
    await pg.end();
  }

  const meta = (await (await fetch(`http://127.0.0.1:${servePort}/v2/models/${MODEL}`)).json()) as { versions: string[]; inputs: Array<{ name: string; datatype: string }> };
  expect(meta.inputs.length).toBeGreaterThan(0);
  const sample: Record<string, unknown> = { hour: 18, dayofweek: 5, month: 1, distance: 800, origin: 'ORD', destination: 'LAX' };
  const res = await fetch(`http://127.0.0.1:${servePort}/v2/models/${MODEL}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: meta.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: [1, 1], data: [i.datatype === 'BYTES' ? String(sample[i.name] ?? 'ORD') : Number(sample[i.name] ?? 1)] })),
    }),
  });
  const body = (await res.json()) as { model_version: string; outputs: Array<{ name: string; data: number[] }> };
  expect({ status: res.status, version: body.model_version }).toEqual({ status: 200, version: '1' });
  const probability = body.outputs.find((o) => o.name === 'probability')!.data[0]!;
  expect(probability).toBeGreaterThan(0);
  expect(probability).toBeLessThan(1);
});
