import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { parseKeyRing } from '../../infra/codec';
import { startCodecServer, type RunningCodecServer } from '../../infra/codec-server';
import { createLogger } from '../../infra/log';
import type { WorkerRuntime } from '../../workers/runtime';
import { MlopsPlugin, type MlopsPluginOptions } from '../../workers/plugin';
import type { PlatformCheckResult } from '../../workflows/platform-check';
import { scanHistory } from '../helpers/history-scan';
import { createTemporalEnv, openTestRuntime, testServices } from '../helpers/real';

/**
 * Encrypted payloads on a real Temporal server: with the plugin's keys on workers and client,
 * the history the server stores holds ciphertext only (a marker put in a spec appears nowhere,
 * failure messages included), the workflows run as before, and the codec server opens the
 * history for the Temporal CLI, with keys rotated since.
 */

const MARKER = `marker-${randomUUID().slice(0, 8)}-in-a-spec`;
const K1 = `k1:${randomBytes(32).toString('base64')}`;
const K2 = `k2:${randomBytes(32).toString('base64')}`;
const TOKEN = 'codec-server-token-0123456789';
let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let codecServer: RunningCodecServer;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`enc-${randomUUID().slice(0, 8)}`)]);
  // After a rotation: k2 seals, k1 still opens what was sealed before.
  codecServer = await startCodecServer({ keys: parseKeyRing(`${K2},${K1}`, 'test'), token: TOKEN, port: 0, host: '127.0.0.1', corsOrigins: ['http://localhost:8233'], log: createLogger('test-codec') });
});

afterAll(async () => {
  await codecServer?.close();
  await runtime?.close();
  await env?.teardown();
});

function plugin(extra: Partial<MlopsPluginOptions>): MlopsPlugin {
  return new MlopsPlugin({ config: runtime.config, database: { db: runtime.db, schema: runtime.config.databaseSchema }, artifacts: runtime.artifacts, gpus: 'cpu', ...extra });
}

async function withWorkers<T>(p: MlopsPlugin, fn: (client: Client) => Promise<T>): Promise<T> {
  const q = p.taskQueues;
  const workers = await Promise.all([q.control, q.cpu, q.gpu].map((taskQueue) => Worker.create({ connection: env.nativeConnection, taskQueue, plugins: [p] })));
  const running = Promise.all(workers.map((w) => w.run()));
  try {
    return await fn(new Client({ connection: env.connection, plugins: [p] }));
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running;
  }
}

/** The history as the server stores it, fetched raw (no codec). */
async function rawHistory(workflowId: string): Promise<unknown> {
  const res = await env.connection.workflowService.getWorkflowExecutionHistory({ namespace: 'default', execution: { workflowId } });
  return res.history;
}

/** Everything a reader of the stored history sees: its JSON, and every byte field (base64 in it) spelled out. */
function readable(history: unknown): string {
  const json = JSON.stringify(history);
  const bytes = [...json.matchAll(/"([A-Za-z0-9+/]{4,}={0,2})"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('latin1'));
  return [json, ...bytes].join('\n');
}

/** A training whose spec names a dataset that is not there: it fails, and its error quotes the URI. */
async function trainingWithMarker(client: Client, p: MlopsPlugin, workflowId: string): Promise<unknown> {
  const spec = { model: `enc-${randomUUID().slice(0, 6)}`, preset: 'flights-delay', dataset: { uris: [`s3://${runtime.config.artifactRoot.uri.replace(/^s3:\/\//, '').split('/')[0]}/${MARKER}.parquet`] }, resources: { gpu: 0 }, onFailure: 'fail' };
  return client.workflow.execute('continuousTraining', { taskQueue: p.taskQueues.control, workflowId, args: [spec] }).catch((err: unknown) => err);
}

// Asynchronous: the codec server answering the CLI runs in this process.
const temporal = (args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(testServices.temporalCli(), ['workflow', 'show', '--address', env.address, '--namespace', 'default', '--output', 'json', ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

test('sealed on the wire: the stored history holds no plaintext of the spec or its failure; without keys it would', async () => {
  const id = randomUUID().slice(0, 6);
  const sealed = plugin({ taskQueues: { prefix: `enc-${id}` }, encryption: parseKeyRing(K1, 'test') });
  const sealedId = `enc-train-${id}`;
  await withWorkers(sealed, async (client) => {
    // The loops run as before with every payload sealed.
    const check = (await client.workflow.execute('platformCheck', { taskQueue: sealed.taskQueues.control, workflowId: `enc-pc-${id}`, args: [{}] })) as PlatformCheckResult;
    expect(check.ok).toBe(true);
    const err = await trainingWithMarker(client, sealed, sealedId);
    // The client, holding the key, reads the failure in full.
    expect(String((err as Error & { cause?: Error }).cause?.message ?? err)).toContain(MARKER);
  });
  const history = await rawHistory(sealedId);
  const text = readable(history);
  expect(text.length).toBeGreaterThan(1000);
  expect(text).toContain('Encoded failure');
  expect(text).not.toContain(MARKER);
  expect(text).toContain('binary/encrypted');
  expect(scanHistory(history, sealedId, [MARKER, K1.slice(3)])).toEqual([]);

  // The same run without keys: the marker is in the history, so the check above can fail.
  const plain = plugin({ taskQueues: { prefix: `plain-${id}` }, encryption: 'off' });
  await withWorkers(plain, async (client) => void (await trainingWithMarker(client, plain, `plain-train-${id}`)));
  expect(readable(await rawHistory(`plain-train-${id}`))).toContain(MARKER);

  // The Temporal CLI through the codec server (holding k2 and the older k1) shows it; without it, ciphertext.
  const opened = await temporal(['--workflow-id', sealedId, '--codec-endpoint', codecServer.url, '--codec-auth', `Bearer ${TOKEN}`]);
  expect({ status: opened.status, stderr: opened.stderr }).toEqual({ status: 0, stderr: '' });
  // The CLI prints payloads as protobuf JSON (data in base64): read it like the raw history.
  expect(readable(JSON.parse(opened.stdout))).toContain(MARKER);
  const closed = await temporal(['--workflow-id', sealedId]);
  expect(closed.status).toBe(0);
  expect(readable(JSON.parse(closed.stdout))).not.toContain(MARKER);
  // A wrong token opens nothing.
  const refused = await temporal(['--workflow-id', sealedId, '--codec-endpoint', codecServer.url, '--codec-auth', 'Bearer wrong-token-000000000']);
  expect(readable({ out: refused.stdout })).not.toContain(MARKER);
}, 300_000);

test('the codec server: bearer token, CORS for the Web UI origin only, and a payload it cannot open named as such', async () => {
  const preflight = await fetch(`${codecServer.url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://localhost:8233', 'access-control-request-method': 'POST' } });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
  expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
  const foreign = await fetch(`${codecServer.url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
  expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  const body = JSON.stringify({ payloads: [{ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"hello"').toString('base64') }] });
  expect((await fetch(`${codecServer.url}/encode`, { method: 'POST', body })).status).toBe(401);
  const enc = await fetch(`${codecServer.url}/encode`, { method: 'POST', body, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
  expect(enc.status).toBe(200);
  const sealed = (await enc.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
  expect(Buffer.from(sealed.payloads[0]!.metadata['encryption-key-id']!, 'base64').toString()).toBe('k2');
  const dec = await fetch(`${codecServer.url}/decode`, { method: 'POST', body: JSON.stringify(sealed), headers: { authorization: `Bearer ${TOKEN}` } });
  expect(((await dec.json()) as { payloads: Array<{ data: string }> }).payloads[0]!.data).toBe(Buffer.from('"hello"').toString('base64'));
  const unknown = { payloads: [{ ...sealed.payloads[0]!, metadata: { ...sealed.payloads[0]!.metadata, 'encryption-key-id': Buffer.from('k9').toString('base64') } }] };
  const bad = await fetch(`${codecServer.url}/decode`, { method: 'POST', body: JSON.stringify(unknown), headers: { authorization: `Bearer ${TOKEN}` } });
  expect(bad.status).toBe(422);
  expect(((await bad.json()) as { error: string }).error).toContain('"k9"');
  const malformed = await fetch(`${codecServer.url}/decode`, { method: 'POST', body: JSON.stringify({ payloads: [{ data: 12 }] }), headers: { authorization: `Bearer ${TOKEN}` } });
  expect(malformed.status).toBe(400);
  expect(await malformed.text()).toContain('payloads.0.data');
});
