import http from 'node:http';
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
import { writeResult } from './report';
import { startModelServer } from '../workers/serving/server';
import { openRuntime } from '../workers/runtime';

/**
 * `npm run bench -- serve`: the model server's OIP REST path against onnxruntime-node called
 * in-process on the same model and rows — latency at batch 1, and throughput at 32 connections.
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

export async function benchServe(): Promise<void> {
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
  try {
    for (let i = 0; i < 300; i++) {
      await session.run(feeds(i));
      await post(bodies[i]!);
    }
    const local: number[] = [];
    const rest: number[] = [];
    for (let i = 0; i < 3000; i++) {
      let t = performance.now();
      await session.run(feeds(i % 1000));
      local.push(performance.now() - t);
      t = performance.now();
      await post(bodies[i % 1000]!);
      rest.push(performance.now() - t);
    }
    const seconds = 5;
    let t0 = performance.now();
    let inProcess = 0;
    while (performance.now() - t0 < seconds * 1000) await session.run(feeds(inProcess++ % 1000));
    const inProcessRate = inProcess / ((performance.now() - t0) / 1000);
    let served = 0;
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async (_, c) => {
        for (let i = c; performance.now() - t0 < seconds * 1000; i += 32) {
          await post(bodies[i % 1000]!);
          served++;
        }
      }),
    );
    const restRate = served / ((performance.now() - t0) / 1000);
    const result = {
      machine: { cpus: os.availableParallelism(), node: process.version, date: new Date().toISOString() },
      p50Ratio: quantile(rest, 0.5) / quantile(local, 0.5),
      p99Ms: quantile(rest, 0.99),
      throughputRatio: restRate / inProcessRate,
      figures: { restP50Ms: quantile(rest, 0.5), restP99Ms: quantile(rest, 0.99), inProcessP50Ms: quantile(local, 0.5), inProcessP99Ms: quantile(local, 0.99), restRequestsPerSecond32: restRate, inProcessRunsPerSecond: inProcessRate, predictionsLogged: server.predictions.written },
    };
    const f = result.figures;
    process.stdout.write(
      `\n| measure | absolute | ratio | target |\n| --- | --- | --- | --- |\n` +
        `| OIP REST p50 at batch 1 ÷ in-process session.run p50 | ${f.restP50Ms.toFixed(3)} ms ÷ ${f.inProcessP50Ms.toFixed(3)} ms | ${result.p50Ratio.toFixed(2)} | ≤ 2 |\n` +
        `| OIP REST p99 at batch 1 | ${f.restP99Ms.toFixed(3)} ms | | |\n` +
        `| throughput, 32 connections ÷ in-process run rate | ${f.restRequestsPerSecond32.toFixed(0)}/s ÷ ${f.inProcessRunsPerSecond.toFixed(0)}/s | ${result.throughputRatio.toFixed(2)} | ≥ 0.7 |\n\n`,
    );
    await writeResult('serve', result);
  } finally {
    agent.destroy();
    await session.release();
    await server.close();
    await runtime.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
