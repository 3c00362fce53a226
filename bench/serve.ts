import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { seededRandom, type Table } from '../activities/ml/dataset';
import { exportGbdtOnnx, trainGbdt } from '../activities/ml/gbdt';
import { quantile } from '../activities/ml/metrics';
import { signatureOf } from '../activities/training/scoring';
import { loadConfig } from '../infra/config';
import { recordArtifact, registerModelVersion, upsertModel } from '../infra/db/repositories';
import { createLogger } from '../infra/log';
import { wrkPost } from './load-generator';
import { atLeast, atMost, reportRow, writeResult, type ReportedRow } from './report';
import { startModelServer } from '../workers/serving/server';
import { openRuntime } from '../workers/runtime';

/**
 * `npm run bench -- serve`: the model server measured as users measure it, by wrk from another
 * process, against the floor of the stack (a bare Node http server answering a same-size JSON)
 * at batch 1, and against onnxruntime-node in-process on the same rows at batch 64.
 */

const FEATURES = [
  { name: 'hour', kind: 'numeric' as const },
  { name: 'dayofweek', kind: 'numeric' as const },
  { name: 'distance', kind: 'numeric' as const },
  { name: 'origin', kind: 'categorical' as const },
  { name: 'destination', kind: 'categorical' as const },
];
const AIRPORTS = ['ATL', 'ORD', 'DFW', 'LAX', 'SFO', 'JFK', 'DEN', 'PHX', 'LAS', 'SEA'];

function flightsLike(rows: number): Table {
  const r = seededRandom(3);
  const t: Table = { rows, features: FEATURES, numeric: { hour: new Float32Array(rows), dayofweek: new Float32Array(rows), distance: new Float32Array(rows) }, categorical: { origin: [], destination: [] }, label: new Uint8Array(rows) };
  for (let i = 0; i < rows; i++) {
    t.numeric.hour![i] = Math.floor(r() * 24);
    t.numeric.dayofweek![i] = Math.floor(r() * 7);
    t.numeric.distance![i] = 100 + Math.floor(r() * 2500);
    t.categorical.origin!.push(AIRPORTS[Math.floor(r() * AIRPORTS.length)]!);
    t.categorical.destination!.push(AIRPORTS[Math.floor(r() * AIRPORTS.length)]!);
    t.label[i] = r() < (t.numeric.hour![i]! > 16 ? 0.3 : 0.15) ? 1 : 0;
  }
  return t;
}

export async function benchServe(): Promise<ReportedRow[]> {
  const log = createLogger('bench');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-bench-serve-'));
  const config = loadConfig({ ...process.env, MLOPS_STATE_DIR: dir, ARTIFACT_ROOT: path.join(dir, 'artifacts'), MLOPS_DATABASE_NAME: 'mlops_bench' });
  const runtime = await openRuntime(log, { config });
  const table = flightsLike(20_000);
  const bytes = exportGbdtOnnx(trainGbdt(table, { rounds: 100, maxDepth: 6 }));
  const name = `bench-serve-${Date.now()}`;
  const put = await runtime.artifacts.putContent(bytes, { mediaType: 'application/onnx' });
  const artifact = await recordArtifact(runtime.db, { uri: put.uri, sha256: put.sha256, bytes: put.bytes, media_type: 'application/onnx', producing_step_run_id: null });
  const model = await upsertModel(runtime.db, name);
  const sig = signatureOf(FEATURES);
  await registerModelVersion(runtime.db, { modelId: model.id, idempotencyKey: put.sha256, status: 'registered', metrics: {}, onnxArtifactId: artifact.id, inputSignature: sig.inputs, outputSignature: sig.outputs });
  const server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log, adminToken: 'bench-token-0123456789' });
  await server.store.setTraffic(name, { stable: 1, canaryWeight: 0 });
  const row = (i: number) => ({
    inputs: [
      { name: 'hour', datatype: 'FP32', shape: [1, 1], data: [table.numeric.hour![i]] },
      { name: 'dayofweek', datatype: 'FP32', shape: [1, 1], data: [table.numeric.dayofweek![i]] },
      { name: 'distance', datatype: 'FP32', shape: [1, 1], data: [table.numeric.distance![i]] },
      { name: 'origin', datatype: 'BYTES', shape: [1, 1], data: [table.categorical.origin![i]] },
      { name: 'destination', datatype: 'BYTES', shape: [1, 1], data: [table.categorical.destination![i]] },
    ],
  });
  const bodies = Array.from({ length: 1000 }, (_, i) => JSON.stringify(row(i)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const post = (body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(`${server.url}/v2/models/${name}/infer`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  // In-process baseline: the same session options, the same rows, batch 1.
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  const feeds = (i: number) => ({
    hour: new ort.Tensor('float32', Float32Array.of(table.numeric.hour![i]!), [1, 1]),
    dayofweek: new ort.Tensor('float32', Float32Array.of(table.numeric.dayofweek![i]!), [1, 1]),
    distance: new ort.Tensor('float32', Float32Array.of(table.numeric.distance![i]!), [1, 1]),
    origin: new ort.Tensor('string', [table.categorical.origin![i]!], [1, 1]),
    destination: new ort.Tensor('string', [table.categorical.destination![i]!], [1, 1]),
  });
  const batchBody = (n: number) =>
    JSON.stringify({
      inputs: [
        { name: 'hour', datatype: 'FP32', shape: [n, 1], data: Array.from(table.numeric.hour!.subarray(0, n)) },
        { name: 'dayofweek', datatype: 'FP32', shape: [n, 1], data: Array.from(table.numeric.dayofweek!.subarray(0, n)) },
        { name: 'distance', datatype: 'FP32', shape: [n, 1], data: Array.from(table.numeric.distance!.subarray(0, n)) },
        { name: 'origin', datatype: 'BYTES', shape: [n, 1], data: table.categorical.origin!.slice(0, n) },
        { name: 'destination', datatype: 'BYTES', shape: [n, 1], data: table.categorical.destination!.slice(0, n) },
      ],
    });
  const batchFeeds = (n: number) => ({
    hour: new ort.Tensor('float32', table.numeric.hour!.slice(0, n), [n, 1]),
    dayofweek: new ort.Tensor('float32', table.numeric.dayofweek!.slice(0, n), [n, 1]),
    distance: new ort.Tensor('float32', table.numeric.distance!.slice(0, n), [n, 1]),
    origin: new ort.Tensor('string', table.categorical.origin!.slice(0, n), [n, 1]),
    destination: new ort.Tensor('string', table.categorical.destination!.slice(0, n), [n, 1]),
  });
  let bare: http.Server | undefined;
  try {
    for (let i = 0; i < 300; i++) {
      await session.run(feeds(i));
      await post(bodies[i]!);
    }
    const local: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const t = performance.now();
      await session.run(feeds(i % 1000));
      local.push(performance.now() - t);
    }
    const rate = async (fn: () => Promise<unknown>, seconds: number) => {
      const t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < seconds * 1000) {
        await fn();
        n++;
      }
      return n / ((performance.now() - t0) / 1000);
    };
    const inProcessRate = await rate(() => session.run(feeds(0)), 5);
    const f64 = batchFeeds(64);
    const inProcessRows64 = 64 * (await rate(() => session.run(f64), 5));

    // The floor of the stack: a bare Node http server that reads the body and answers a fixed
    // JSON as long as ours, measured by the same generator with the same body.
    const sample = await fetch(`${server.url}/v2/models/${name}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[0] });
    if (sample.status !== 200) throw new Error(`model server answered ${sample.status}: ${await sample.text()}`);
    const answer = Buffer.from(await sample.text());
    bare = http.createServer((req, res) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
        res.end(answer);
      });
    });
    await new Promise<void>((resolve) => bare!.listen(0, '127.0.0.1', resolve));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/v2/models/${name}/infer`;
    const inferUrl = `${server.url}/v2/models/${name}/infer`;
    const seconds = Number(process.env.BENCH_SERVE_SECONDS ?? 10);
    const gen = (url: string, body: string, connections: number) => wrkPost({ url, body, contentType: 'application/json', connections, seconds, threads: connections > 1 ? 2 : 1, dir, log });
    log.info(`wrk, batch 1: 1 and 32 connections, ${seconds} s each, against the model server and a bare http server`);
    const ours1 = await gen(inferUrl, bodies[0]!, 1);
    const bare1 = await gen(bareUrl, bodies[0]!, 1);
    const ours32 = await gen(inferUrl, bodies[0]!, 32);
    const bare32 = await gen(bareUrl, bodies[0]!, 32);
    log.info('wrk, batch 64 at 4 connections');
    const ours64 = await gen(inferUrl, batchBody(64), 4);
    const rows64 = ours64.requestsPerSecond * 64;
    const result = {
      machine: { cpus: os.availableParallelism(), node: process.version, date: new Date().toISOString() },
      p50VsBare: ours1.p50Ms / bare1.p50Ms,
      throughputVsBare: ours32.requestsPerSecond / bare32.requestsPerSecond,
      batch64VsInProcess: rows64 / inProcessRows64,
      responseBytes: answer.length,
      figures: {
        ours1,
        bare1,
        ours32,
        bare32,
        ours64,
        rows64PerSecond: rows64,
        inProcessRows64PerSecond: inProcessRows64,
        inProcessP50Ms: quantile(local, 0.5),
        inProcessRunsPerSecond: inProcessRate,
        predictionsLogged: server.predictions.written,
      },
    };
    const fx = (x: number) => (x < 1 ? x.toFixed(3) : x.toFixed(2));
    const rows = [
      { measure: 'OIP REST p50, batch 1, 1 connection (wrk) ÷ bare Node http', ours: `${fx(ours1.p50Ms)} ms`, baseline: `${fx(bare1.p50Ms)} ms`, ratio: result.p50VsBare, target: atMost(1.3) },
      { measure: 'OIP REST requests/s, batch 1, 32 connections (wrk) ÷ bare Node http', ours: `${ours32.requestsPerSecond.toFixed(0)}/s`, baseline: `${bare32.requestsPerSecond.toFixed(0)}/s`, ratio: result.throughputVsBare, target: atLeast(0.8) },
      { measure: 'OIP REST rows/s, batch 64, 4 connections ÷ in-process session.run', ours: `${rows64.toFixed(0)}/s`, baseline: `${inProcessRows64.toFixed(0)}/s`, ratio: result.batch64VsInProcess, target: atLeast(0.8) },
      { measure: 'OIP REST p99, batch 1, 1 connection ÷ bare', ours: `${fx(ours1.p99Ms)} ms`, baseline: `${fx(bare1.p99Ms)} ms`, ratio: ours1.p99Ms / bare1.p99Ms },
      { measure: 'OIP REST p50, batch 1 ÷ in-process session.run p50', ours: `${fx(ours1.p50Ms)} ms`, baseline: `${fx(quantile(local, 0.5))} ms`, ratio: ours1.p50Ms / quantile(local, 0.5) },
    ].map(reportRow);
    await writeResult('serve', result, rows);
    return rows;
  } finally {
    bare?.close();
    agent.destroy();
    await session.release();
    await server.close();
    await runtime.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
