import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { exportGbdtOnnx, trainGbdt } from '../../activities/ml/gbdt';
import { signatureOf } from '../../activities/training/scoring';
import { recordArtifact, registerModelVersion, upsertModel } from '../../infra/db/repositories';
import { createLogger } from '../../infra/log';
import { startModelServer, type RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { openTestRuntime } from '../helpers/real';
import { SERVING_FEATURES as FEATURES, SERVING_ORIGINS as ORIGINS, servingTable as table } from '../helpers/serving-table';

/**
 * Dynamic batching on the real registry (PostgreSQL) and artifact store: concurrent requests
 * share onnxruntime runs and each gets exactly the rows it would get alone, and a malformed
 * request among them gets its own 400 while the others are answered.
 *
 * The requests are made to wait for each other without relying on timing: each sends its
 * headers first, and the bodies go only once the server has taken every request's headers. The
 * server counts a request whose body is still coming as one a forming batch waits for, so they
 * share runs. The delay limit is longer than the test may take, so no batch leaves early, and a
 * request that kept its neighbours waiting (say a refused one still counted as coming) would fail
 * the test.
 */


let runtime: WorkerRuntime;
let batched: RunningModelServer;
let unbatched: RunningModelServer;
const model = `batch-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  runtime = await openTestRuntime(`batch-${randomUUID().slice(0, 8)}`);
  const bytes = exportGbdtOnnx(trainGbdt(table(3000, 1), { rounds: 20, maxDepth: 4 }));
  const put = await runtime.artifacts.putContent(bytes, { mediaType: 'application/onnx' });
  const artifact = await recordArtifact(runtime.db, { uri: put.uri, sha256: put.sha256, bytes: put.bytes, media_type: 'application/onnx', producing_step_run_id: null });
  const m = await upsertModel(runtime.db, model);
  const sig = signatureOf(FEATURES);
  await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: `test/${put.sha256}`, status: 'registered', metrics: {}, onnxArtifactId: artifact.id, inputSignature: sig.inputs, outputSignature: sig.outputs });
  const log = createLogger('test-batching');
  batched = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log, batching: { maxDelayMs: 600_000, maxRows: 1024 }, predictionLog: { intervalMs: 100 } });
  unbatched = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log, batching: { maxDelayMs: 0 }, predictionLog: { intervalMs: 100 } });
  for (const s of [batched, unbatched]) await s.store.setTraffic(model, { stable: 1, canaryWeight: 0 });
});

afterAll(async () => {
  await batched?.close();
  await unbatched?.close();
  await runtime?.close();
});

/** Request `k`: its own rows (1 to 4 of them), so a mixed-up split would show. */
function body(k: number): string {
  const n = 1 + (k % 4);
  const rows = Array.from({ length: n }, (_, i) => 7 * k + i);
  return JSON.stringify({
    inputs: [
      { name: 'hour', datatype: 'FP32', shape: [n, 1], data: rows.map((r) => r % 24) },
      { name: 'distance', datatype: 'FP32', shape: [n, 1], data: rows.map((r) => 100 + 37 * r) },
      { name: 'origin', datatype: 'BYTES', shape: [n, 1], data: rows.map((r) => ORIGINS[r % ORIGINS.length]!) },
    ],
  });
}

interface Answer {
  status: number;
  json: { outputs?: Array<{ shape: number[]; data: number[] }>; error?: string };
}

/**
 * Sends every body at once. Each request goes with `Expect: 100-continue`, so the server answers
 * its headers (and has routed it) before the body is sent; the bodies go once all are routed.
 */
async function concurrently(server: RunningModelServer, bodies: string[], ids: string[] = []): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: bodies.length });
  try {
    const open = bodies.map((b, k) => {
      const bytes = Buffer.from(b);
      const id = ids[k] ? { 'x-request-id': ids[k] } : {};
      const req = http.request(`${server.url}/v2/models/${model}/infer`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': bytes.length, expect: '100-continue', ...id } });
      const routed = new Promise<void>((resolve) => req.once('continue', () => resolve()));
      const answer = new Promise<Answer>((resolve, reject) => {
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer['json'] }));
        });
        req.on('error', reject);
      });
      req.flushHeaders();
      return { req, bytes, answer, routed };
    });
    await Promise.all(open.map((o) => o.routed));
    for (const o of open) o.req.end(o.bytes);
    return await Promise.all(open.map((o) => o.answer));
  } finally {
    agent.destroy();
  }
}

async function one(server: RunningModelServer, b: string): Promise<Answer> {
  const res = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
  return { status: res.status, json: (await res.json()) as Answer['json'] };
}

/** From the Prometheus text: runs of the model, and runs that scored more than one request. */
async function batchRuns(server: RunningModelServer): Promise<{ runs: number; shared: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const figure = (series: string) => Number(new RegExp(`^${series.replace(/[{}+]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const labels = `model="${model}",version="1"`;
  const runs = figure(`mlops_inference_batch_requests_count{${labels}}`);
  return { runs, shared: runs - figure(`mlops_inference_batch_requests_bucket{${labels},le="1"}`) };
}

test('concurrent requests share onnxruntime runs and each gets exactly the rows it gets alone', async () => {
  const bodies = Array.from({ length: 24 }, (_, k) => body(k));
  const alone = await Promise.all(bodies.map((b) => one(unbatched, b)));
  const ids = bodies.map((_b, k) => `${model}-together-${k}`);
  const together = await concurrently(batched, bodies, ids);
  expect(together.map((a) => a.status)).toEqual(bodies.map(() => 200));
  together.forEach((a, k) => {
    expect(a.json.outputs![0]!.shape).toEqual([1 + (k % 4), 1]);
    expect(a.json.outputs![0]!.data).toEqual(alone[k]!.json.outputs![0]!.data);
  });
  const { runs, shared } = await batchRuns(batched);
  expect(shared).toBeGreaterThan(0);
  expect(runs).toBeLessThan(bodies.length);
  // The server without batching ran every request alone.
  expect(await batchRuns(unbatched)).toEqual({ runs: bodies.length, shared: 0 });
  // Per request still: one request and its rows counted for each.
  const text = await (await fetch(`${batched.url}/metrics`)).text();
  expect(text).toMatch(new RegExp(`^mlops_inference_requests_total\\{model="${model}",version="1",role="stable"\\} ${bodies.length}$`, 'm'));
  const rows = bodies.reduce((n, _b, k) => n + 1 + (k % 4), 0);
  expect(text).toMatch(new RegExp(`^mlops_inference_rows_total\\{model="${model}",version="1",role="stable"\\} ${rows}$`, 'm'));
  // And the prediction log has each request's rows under its own id, with the score it was answered.
  await batched.predictions.flush();
  const logged = await runtime.db.selectFrom('prediction_log').select(['request_id', 'outputs']).where('request_id', 'like', `${model}-together-%`).execute();
  const byId = new Map(logged.map((r) => [r.request_id, (r.outputs as { probability: number }).probability]));
  expect(byId.size).toBe(rows);
  together.forEach((a, k) => {
    const n = 1 + (k % 4);
    const expected = a.json.outputs![0]!.data;
    const got = n === 1 ? [byId.get(ids[k]!)] : Array.from({ length: n }, (_, i) => byId.get(`${ids[k]}#${i}`));
    expect(got).toEqual(expected);
  });
});

test('a malformed request among concurrent good ones gets its 400; the others are answered', async () => {
  const good = Array.from({ length: 9 }, (_, k) => body(k));
  const bad = JSON.stringify({ inputs: [{ name: 'hour', datatype: 'FP32', shape: [1, 1], data: ['seven'] }, JSON.parse(good[0]!).inputs[1], JSON.parse(good[0]!).inputs[2]] });
  const before = await batchRuns(batched);
  const answers = await concurrently(batched, [...good.slice(0, 4), bad, ...good.slice(4)]);
  const badAnswer = answers.splice(4, 1)[0]!;
  expect(badAnswer.status).toBe(400);
  expect(badAnswer.json.error).toMatch(/input hour\[0\]: "seven" is not a finite FP32 number/);
  const alone = await Promise.all(good.map((b) => one(unbatched, b)));
  expect(answers.map((a) => a.status)).toEqual(good.map(() => 200));
  answers.forEach((a, k) => expect(a.json.outputs![0]!.data).toEqual(alone[k]!.json.outputs![0]!.data));
  const after = await batchRuns(batched);
  expect(after.shared).toBeGreaterThan(before.shared);
});
