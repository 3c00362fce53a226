import { randomUUID } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import type { Client as PgClient } from 'pg';
import { exportGbdtOnnx, trainGbdt } from '../../activities/ml/gbdt';
import { signatureOf } from '../../activities/training/scoring';
import { recordArtifact, registerModelVersion, upsertModel } from '../../infra/db/repositories';
import { createLogger } from '../../infra/log';
import { startModelServer, type RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { independentPg, openTestRuntime } from '../helpers/real';
import { checkMetrics } from '../helpers/promtool';
import { waitFor } from '../helpers/wait';
import { SERVING_FEATURES as FEATURES, SERVING_ORIGINS as ORIGINS, servingTable as table } from '../helpers/serving-table';

/** The OIP model server on the real registry (PostgreSQL) and artifact store (MinIO). */

const TOKEN = 'test-admin-token-0123456789';

let runtime: WorkerRuntime;
let pg: PgClient;
let server: RunningModelServer;
const model = `serve-${randomUUID().slice(0, 8)}`;
const onnx: Record<number, Buffer> = {};

async function register(version: number, shift: number, name = model, features = FEATURES): Promise<void> {
  const bytes = exportGbdtOnnx(trainGbdt({ ...table(3000, version, shift), features }, { rounds: 10, maxDepth: 3 }));
  if (name === model) onnx[version] = bytes;
  const put = await runtime.artifacts.putContent(bytes, { mediaType: 'application/onnx' });
  const artifact = await recordArtifact(runtime.db, { uri: put.uri, sha256: put.sha256, bytes: put.bytes, media_type: 'application/onnx', producing_step_run_id: null });
  const m = await upsertModel(runtime.db, name);
  const sig = signatureOf(features);
  const mv = await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: `test/${put.sha256}`, status: 'registered', metrics: {}, onnxArtifactId: artifact.id, inputSignature: sig.inputs, outputSignature: sig.outputs });
  expect(mv.version).toBe(version);
}

beforeAll(async () => {
  runtime = await openTestRuntime(`serve-${randomUUID().slice(0, 8)}`);
  pg = await independentPg();
  await register(1, 0);
  await register(2, 1.5);
  server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('test-serve'), adminToken: TOKEN, maxBodyBytes: 64 * 1024, maxBatch: 1000, predictionLog: { intervalMs: 100 } });
  const r = await admin('traffic', { stable: 1 });
  expect(r.status).toBe(200);
});

afterAll(async () => {
  await server?.close();
  await pg?.end();
  await runtime?.close();
});

function admin(action: string, body: unknown, token = TOKEN) {
  return fetch(`${server.url}/admin/models/${model}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

const request = (n = 1, offset = 0) => ({
  inputs: [
    { name: 'hour', datatype: 'FP32', shape: [n, 1], data: Array.from({ length: n }, (_, i) => (i + offset) % 24) },
    { name: 'distance', datatype: 'FP32', shape: [n, 1], data: Array.from({ length: n }, (_, i) => 300 + 10 * i) },
    { name: 'origin', datatype: 'BYTES', shape: [n, 1], data: Array.from({ length: n }, (_, i) => ORIGINS[i % ORIGINS.length]!) },
  ],
});

async function infer(body: unknown, path = `/v2/models/${model}/infer`, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { outputs?: Array<{ data: number[]; shape: number[] }>; model_version?: string; error?: string }, headers: res.headers };
}

async function offline(version: number, n: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(onnx[version]!);
  const req = request(n);
  const out = await session.run({
    hour: new ort.Tensor('float32', Float32Array.from(req.inputs[0]!.data as number[]), [n, 1]),
    distance: new ort.Tensor('float32', Float32Array.from(req.inputs[1]!.data as number[]), [n, 1]),
    origin: new ort.Tensor('string', req.inputs[2]!.data as string[], [n, 1]),
  });
  await session.release();
  return out.probability!.data as Float32Array;
}

test('health, metadata and readiness follow the Open Inference Protocol', async () => {
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
  expect((await fetch(`${server.url}/v2/health/ready`)).status).toBe(200);
  const meta = (await (await fetch(`${server.url}/v2/models/${model}`)).json()) as { name: string; inputs: Array<{ name: string; datatype: string }>; outputs: Array<{ name: string }> };
  expect(meta.name).toBe(model);
  expect(meta.inputs).toEqual([
    { name: 'hour', datatype: 'FP32', shape: [-1, 1] },
    { name: 'distance', datatype: 'FP32', shape: [-1, 1] },
    { name: 'origin', datatype: 'BYTES', shape: [-1, 1] },
  ]);
  expect(meta.outputs[0]!.name).toBe('probability');
  expect((await fetch(`${server.url}/v2/models/${model}/ready`)).status).toBe(200);
  expect((await fetch(`${server.url}/v2/models/${model}/versions/7/ready`)).status).toBe(404);
});

test('inference through HTTP reproduces the offline scores; predictions are logged and take labels later', async () => {
  const r = await infer({ id: 'req-1', ...request(50) }, `/v2/models/${model}/infer`, { 'x-request-id': `contract-${model}` });
  expect(r.status).toBe(200);
  expect(r.body.model_version).toBe('1');
  expect(r.body.outputs![0]!.shape).toEqual([50, 1]);
  const expected = await offline(1, 50);
  r.body.outputs![0]!.data.forEach((p, i) => expect(Math.abs(p - expected[i]!)).toBeLessThanOrEqual(1e-6));
  expect((await infer(request(5), `/v2/models/${model}/versions/2/infer`)).status).toBe(404); // registered, not loaded
  expect((await admin('load', { version: 2 })).status).toBe(200);
  const pinned = await infer(request(5), `/v2/models/${model}/versions/2/infer`);
  expect(pinned.body.model_version).toBe('2');
  const expected2 = await offline(2, 5);
  pinned.body.outputs![0]!.data.forEach((p, i) => expect(Math.abs(p - expected2[i]!)).toBeLessThanOrEqual(1e-6));

  await server.predictions.flush();
  const rows = await pg.query(`select request_id, inputs, outputs, latency_ms from prediction_log where request_id like $1 order by request_id`, [`contract-${model}#%`]);
  expect(rows.rows).toHaveLength(50);
  expect(rows.rows[0].inputs).toEqual({ hour: 0, distance: 300, origin: 'ATL' });
  const fb = await fetch(`${server.url}/v2/models/${model}/feedback`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ labels: [{ request_id: `contract-${model}#0`, label: 1 }, { request_id: 'nope', label: 0 }] }) });
  expect(await fb.json()).toEqual({ attached: 1, unknown: 1 });
  const labelled = await pg.query(`select label from prediction_log where request_id = $1`, [`contract-${model}#0`]);
  expect(labelled.rows[0].label).toBe(1);
});

const good = () => request(2);
const malformed: Array<[string, unknown, number, RegExp]> = [
  ['not JSON', '{"inputs": [', 400, /not valid JSON/],
  ['empty body', '', 400, /empty/],
  ['no inputs', { inputs: [] }, 400, /inputs/],
  ['wrong datatype', { inputs: [{ ...good().inputs[0]!, datatype: 'INT64' }, good().inputs[1], good().inputs[2]] }, 400, /hour: datatype INT64, expected FP32/],
  ['string where a number goes', { inputs: [{ ...good().inputs[0]!, data: ['7', 8] }, good().inputs[1], good().inputs[2]] }, 400, /hour\[0\]: "7" is not a finite FP32 number/],
  ['number where a string goes', { inputs: [good().inputs[0], good().inputs[1], { ...good().inputs[2]!, data: [1, 2] }] }, 400, /origin\[0\]: 1 is not a string/],
  ['shape/count mismatch', { inputs: [{ ...good().inputs[0]!, shape: [3, 1] }, good().inputs[1], good().inputs[2]] }, 400, /hour: 2 elements for shape \[3, 1\]/],
  ['wrong rank', { inputs: [{ ...good().inputs[0]!, shape: [2] }, good().inputs[1], good().inputs[2]] }, 400, /hour: shape \[2\], expected \[batch, 1\]/],
  ['huge shape', { inputs: [{ ...good().inputs[0]!, shape: [100_000_000, 1] }, good().inputs[1], good().inputs[2]] }, 400, /batch of 100000000 is over the limit of 1000/],
  ['batch sizes differ', { inputs: [good().inputs[0], request(3).inputs[1], good().inputs[2]] }, 400, /distance: batch of 3, but other inputs have 2/],
  ['missing input', { inputs: [good().inputs[0], good().inputs[1]] }, 400, /input origin is missing/],
  ['extra input', { inputs: [...good().inputs, { name: 'carrier', datatype: 'BYTES', shape: [2, 1], data: ['AA', 'UA'] }] }, 400, /unexpected input "carrier"/],
  ['NaN spelled as a string', { inputs: [{ ...good().inputs[0]!, data: ['NaN', 1] }, good().inputs[1], good().inputs[2]] }, 400, /not a finite FP32 number/],
  ['overflowing number', { inputs: [{ ...good().inputs[0]!, data: [1e39, 1] }, good().inputs[1], good().inputs[2]] }, 400, /not a finite FP32 number/],
  ['unknown field', { ...good(), priority: 'high' }, 400, /priority|Unrecognized/],
  ['oversized body', { ...good(), id: 'x', parameters: { pad: 'y'.repeat(100_000) } }, 413, /over the limit/],
  ['unknown output', { ...good(), outputs: [{ name: 'logits' }] }, 400, /unknown output "logits"/],
];

test.each(malformed)('malformed request (%s) gets a 4xx naming the problem', async (_name, body, status, pattern) => {
  const r = await infer(body);
  expect(r.status).toBe(status);
  expect(r.body.error).toMatch(pattern);
});

test('with two versions loaded, the model metadata describes the one that serves; a version asked for is described as itself', async () => {
  const two = `${model}-two`;
  await register(1, 0, two);
  await register(2, 0, two, FEATURES.filter((f) => f.name !== 'origin'));
  const post = (action: string, body: unknown) => fetch(`${server.url}/admin/models/${two}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
  expect((await post('traffic', { stable: 1 })).status).toBe(200);
  expect((await post('traffic', { stable: 2 })).status).toBe(200);
  const inputsOf = async (path: string) => ((await (await fetch(`${server.url}${path}`)).json()) as { versions: string[]; inputs: Array<{ name: string }> });
  // v1 was loaded first and is still held; v2 serves.
  const unversioned = await inputsOf(`/v2/models/${two}`);
  expect(unversioned.versions.sort()).toEqual(['1', '2']);
  expect(unversioned.inputs.map((i) => i.name)).toEqual(['hour', 'distance']);
  expect((await inputsOf(`/v2/models/${two}/versions/1`)).inputs.map((i) => i.name)).toEqual(['hour', 'distance', 'origin']);
  expect((await post('traffic', { stable: 1 })).status).toBe(200);
  expect((await inputsOf(`/v2/models/${two}`)).inputs.map((i) => i.name)).toEqual(['hour', 'distance', 'origin']);
});

test('a known route with the wrong method: 405 with Allow; an unknown one stays 404', async () => {
  const cases: Array<[string, string, string]> = [
    ['GET', `/v2/models/${model}/infer`, 'POST'],
    ['GET', `/v2/models/${model}/versions/1/infer`, 'POST'],
    ['PUT', `/v2/models/${model}/feedback`, 'POST'],
    ['POST', `/v2/models/${model}`, 'GET'],
    ['DELETE', `/v2/models/${model}/ready`, 'GET'],
    ['POST', '/v2/health/ready', 'GET'],
    ['POST', '/v2', 'GET'],
  ];
  for (const [method, path, allow] of cases) {
    const res = await fetch(`${server.url}${path}`, { method });
    expect([method, path, res.status, res.headers.get('allow')]).toEqual([method, path, 405, allow]);
    expect(((await res.json()) as { error: string }).error).toContain(allow);
  }
  expect((await fetch(`${server.url}/v2/models/${model}/explain`)).status).toBe(404);
  expect((await fetch(`${server.url}/v2/nothing`, { method: 'POST' })).status).toBe(404);
});

test('unknown model or version: 404; after every bad request the server still serves', async () => {
  expect((await infer(good(), '/v2/models/no-such-model/infer')).status).toBe(404);
  expect((await infer(good(), `/v2/models/${model}/versions/9/infer`)).status).toBe(404);
  expect((await infer(good(), `/v2/models/${model}/versions/abc/infer`)).status).toBe(404);
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 200; i++) await infer(malformed[i % malformed.length]![1]);
  expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
  expect((await infer(good())).status).toBe(200);
});

test('admin API: the token is required; a tampered ONNX file is refused by its sha256', async () => {
  expect((await admin('traffic', { stable: 2 }, 'wrong-token-wrong-token')).status).toBe(401);
  expect((await admin('traffic', { stable: 5 })).status).toBe(404);
  expect((await admin('unload', { version: 1 })).status).toBe(409); // still the stable version
  // Overwrite a version's stored bytes: the server must not load them.
  const evil = `tamper-${randomUUID().slice(0, 8)}`;
  const bytes = onnx[1]!;
  const put = await runtime.artifacts.putContent(Buffer.concat([bytes, Buffer.from([0])]), { mediaType: 'application/onnx' });
  const artifact = await recordArtifact(runtime.db, { uri: put.uri, sha256: 'f'.repeat(64), bytes: put.bytes, media_type: 'application/onnx', producing_step_run_id: null });
  const m = await upsertModel(runtime.db, evil);
  const sig = signatureOf(FEATURES);
  await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: 'x', status: 'registered', metrics: {}, onnxArtifactId: artifact.id, inputSignature: sig.inputs, outputSignature: sig.outputs });
  const r = await fetch(`${server.url}/admin/models/${evil}/load`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ version: 1 }) });
  expect(r.status).toBe(500);
  expect(((await r.json()) as { error: string }).error).toMatch(/refusing to load it/);

  // The right bytes, but a registry signature that names inputs the graph does not take (a timestamp where it takes hour).
  const wrong = `wrong-sig-${randomUUID().slice(0, 8)}`;
  const good = await runtime.artifacts.putContent(bytes, { mediaType: 'application/onnx' });
  const goodArtifact = await recordArtifact(runtime.db, { uri: good.uri, sha256: good.sha256, bytes: good.bytes, media_type: 'application/onnx', producing_step_run_id: null });
  const w = await upsertModel(runtime.db, wrong);
  const timed = signatureOf(FEATURES.map((f) => (f.name === 'hour' ? { ...f, column: 'date', transform: 'hour' as const } : f)));
  await registerModelVersion(runtime.db, { modelId: w.id, idempotencyKey: 'y', status: 'registered', metrics: {}, onnxArtifactId: goodArtifact.id, inputSignature: timed.inputs, outputSignature: timed.outputs });
  const refused = await fetch(`${server.url}/admin/models/${wrong}/load`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ version: 1 }) });
  expect(refused.status).toBe(500);
  expect(((await refused.json()) as { error: string }).error).toBe(
    `model ${wrong} v1: the registry's inputs do not match the graph's: date INT64 (graph: no such input), hour (graph only); refusing to load it`,
  );
});

test('canary by weight, shadow scoring, and a hot swap under steady load with no failed request', async () => {
  // Canary: 50% of unversioned requests.
  expect((await admin('traffic', { stable: 1, canary: 2, canaryWeight: 50 })).status).toBe(200);
  const seen = new Set<string>();
  for (let i = 0; i < 60; i++) seen.add((await infer(good())).body.model_version!);
  expect([...seen].sort()).toEqual(['1', '2']);

  // Shadow: v2 scores every request, only v1 answers.
  expect((await admin('traffic', { stable: 1, shadow: 2 })).status).toBe(200);
  const shadowId = `shadow-${randomUUID()}`;
  const r = await infer(request(1), `/v2/models/${model}/infer`, { 'x-request-id': shadowId });
  expect(r.body.model_version).toBe('1');
  await new Promise((res) => setTimeout(res, 50));
  await server.predictions.flush();
  const logged = await pg.query(`select request_id, outputs->>'role' as role, model_version_id from prediction_log where request_id like $1 order by request_id`, [`${shadowId}%`]);
  expect(logged.rows.map((x: { role: string }) => x.role)).toEqual(['stable', 'shadow']);

  // Hot swap: 8 clients in a loop while the stable version flips back and forth.
  let stop = false;
  const statuses: number[] = [];
  const versions = new Set<string>();
  const clients = Array.from({ length: 8 }, async () => {
    while (!stop) {
      const x = await infer(request(4));
      statuses.push(x.status);
      if (x.body.model_version) versions.add(x.body.model_version);
    }
  });
  for (let i = 0; i < 6; i++) {
    await new Promise((res) => setTimeout(res, 150));
    expect((await admin('traffic', { stable: i % 2 ? 1 : 2 })).status).toBe(200);
  }
  await new Promise((res) => setTimeout(res, 150));
  stop = true;
  await Promise.all(clients);
  expect(statuses.length).toBeGreaterThan(50);
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
  expect([...versions].sort()).toEqual(['1', '2']);

  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  expect(metrics).toMatch(new RegExp(`mlops_inference_requests_total\\{model="${model}",version="2",role="shadow"\\} [1-9]`));
  expect(metrics).toMatch(/mlops_bad_requests_total [1-9]/);
});

test('/metrics passes promtool check metrics; the promotion test requests are counted apart from application traffic', async () => {
  expect((await infer(request(1))).status).toBe(200);
  expect((await infer(request(2), `/v2/models/${model}/versions/1/infer`, { 'x-mlops-traffic': 'contract' })).status).toBe(200);
  expect((await infer(request(1), `/v2/models/${model}/versions/1/infer`, { 'x-mlops-traffic': 'load' })).status).toBe(200);
  expect((await infer(request(1), `/v2/models/${model}/versions/1/infer`)).status).toBe(200);
  expect((await infer('{bad json')).status).toBe(400);
  const res = await fetch(`${server.url}/metrics`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const lint = await checkMetrics(text);
  expect(lint).toEqual({ code: 0, output: '' });
  for (const role of ['contract', 'load', 'pinned']) expect(text).toMatch(new RegExp(`^mlops_inference_rows_total\\{model="${model}",version="1",role="${role}"\\} [1-9]`, 'm'));
  expect(text).toMatch(/^mlops_inference_duration_seconds_bucket\{.*le="\+Inf"\} [1-9]/m);
  expect(text).toMatch(/^# TYPE mlops_prediction_log_pending_rows gauge$/m);
  // Logged as such too: monitoring and the canary gate read only stable, canary and shadow rows.
  const logged = await waitFor('the test rows in the prediction log', async () => {
    const r = await pg.query(`select outputs->>'role' as role, count(*)::int n from prediction_log p join models m on m.id = p.model_id where m.name = $1 and outputs->>'role' in ('contract', 'load') group by 1 order by 1`, [model]);
    return r.rows.length === 2 ? r.rows : undefined;
  });
  expect(logged).toEqual([{ role: 'contract', n: 2 }, { role: 'load', n: 1 }]);
});
