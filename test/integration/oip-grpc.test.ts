import { randomUUID } from 'node:crypto';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import type { Client as PgClient } from 'pg';
import { exportGbdtOnnx, trainGbdt } from '../../activities/ml/gbdt';
import { signatureOf } from '../../activities/training/scoring';
import { recordArtifact, registerModelVersion, upsertModel } from '../../infra/db/repositories';
import { compiledEntry } from '../../infra/entry';
import { createLogger } from '../../infra/log';
import { startModelServer, type RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { independentPg, openTestRuntime, testEnv } from '../helpers/real';
import { workerGroup } from '../helpers/run-entry';
import { waitFor } from '../helpers/wait';
import { call, oipClient, type OipClient } from '../helpers/oip-grpc-client';
import { SERVING_FEATURES as FEATURES, SERVING_ORIGINS as ORIGINS, servingTable as table } from '../helpers/serving-table';

/**
 * The model server's OIP gRPC API and the REST binary tensor extension, on the real registry
 * (PostgreSQL) and artifact store (MinIO): the same rows scored through gRPC (typed and raw),
 * REST JSON and REST binary give the same scores, and bad requests get the protocol's errors.
 * The client is generated from the proto at test time, as any OIP client would be.
 */

const TOKEN = 'test-admin-token-0123456789';
const ROWS = 20;

// The rows every transport scores.
const hours = Array.from({ length: ROWS }, (_, i) => (i * 5) % 24);
const distances = Array.from({ length: ROWS }, (_, i) => 150 + 97 * i);
const origins = Array.from({ length: ROWS }, (_, i) => ORIGINS[i % ORIGINS.length]!);

/** The gRPC error a call fails with (the test fails if it succeeds). */
async function grpcError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  const outcome = await promise.then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  if (!outcome) throw new Error('the call succeeded; an error was expected');
  return outcome;
}

const fp32Bytes = (values: number[]) => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
};
const bytesElements = (values: string[]) => Buffer.concat(values.flatMap((v) => [Buffer.from(Uint32Array.of(Buffer.byteLength(v)).buffer), Buffer.from(v)]));
const readFp32 = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(i * 4));

interface InferReply {
  model_version: string;
  id: string;
  outputs: Array<{ name: string; datatype: string; shape: number[]; contents: { fp32_contents: number[] } | null }>;
  raw_output_contents: Buffer[];
}

const typedRequest = (name: string, over: Record<string, unknown> = {}) => ({
  model_name: name,
  inputs: [
    { name: 'hour', datatype: 'FP32', shape: [ROWS, 1], contents: { fp32_contents: hours } },
    { name: 'distance', datatype: 'FP32', shape: [ROWS, 1], contents: { fp32_contents: distances } },
    { name: 'origin', datatype: 'BYTES', shape: [ROWS, 1], contents: { bytes_contents: origins.map((o) => Buffer.from(o)) } },
  ],
  ...over,
});
const rawRequest = (name: string) => ({
  model_name: name,
  inputs: [
    { name: 'hour', datatype: 'FP32', shape: [ROWS, 1] },
    { name: 'distance', datatype: 'FP32', shape: [ROWS, 1] },
    { name: 'origin', datatype: 'BYTES', shape: [ROWS, 1] },
  ],
  raw_input_contents: [fp32Bytes(hours), fp32Bytes(distances), bytesElements(origins)],
});

/** A REST binary-extension request: JSON header, then the three inputs' bytes. */
function binaryBody(sizes: { hour?: number; distance?: number } = {}, parameters: Record<string, unknown> = { binary_data_output: true }) {
  const parts = [fp32Bytes(hours), fp32Bytes(distances), bytesElements(origins)];
  const header = Buffer.from(
    JSON.stringify({
      parameters,
      inputs: [
        { name: 'hour', datatype: 'FP32', shape: [ROWS, 1], parameters: { binary_data_size: sizes.hour ?? parts[0]!.length } },
        { name: 'distance', datatype: 'FP32', shape: [ROWS, 1], parameters: { binary_data_size: sizes.distance ?? parts[1]!.length } },
        { name: 'origin', datatype: 'BYTES', shape: [ROWS, 1], parameters: { binary_data_size: parts[2]!.length } },
      ],
    }),
  );
  return { body: Buffer.concat([header, ...parts]), headerLength: header.length };
}

let runtime: WorkerRuntime;
let pg: PgClient;
let server: RunningModelServer;
let client: OipClient;
let closed = false;
const bucket = `grpc-${randomUUID().slice(0, 8)}`;
const model = `grpc-${randomUUID().slice(0, 8)}`;
const onnx: Record<number, Buffer> = {};
const children = workerGroup();

async function register(version: number, shift: number): Promise<void> {
  const bytes = exportGbdtOnnx(trainGbdt(table(3000, version, shift), { rounds: 10, maxDepth: 3 }));
  onnx[version] = bytes;
  const put = await runtime.artifacts.putContent(bytes, { mediaType: 'application/onnx' });
  const artifact = await recordArtifact(runtime.db, { uri: put.uri, sha256: put.sha256, bytes: put.bytes, media_type: 'application/onnx', producing_step_run_id: null });
  const m = await upsertModel(runtime.db, model);
  const sig = signatureOf(FEATURES);
  const mv = await registerModelVersion(runtime.db, { modelId: m.id, idempotencyKey: `test/${put.sha256}`, status: 'registered', metrics: {}, onnxArtifactId: artifact.id, inputSignature: sig.inputs, outputSignature: sig.outputs });
  expect(mv.version).toBe(version);
}

const admin = (action: string, body: unknown) => fetch(`${server.url}/admin/models/${model}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });

beforeAll(async () => {
  runtime = await openTestRuntime(bucket);
  pg = await independentPg();
  await register(1, 0);
  await register(2, 1.5);
  server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('test-grpc'), adminToken: TOKEN, grpcPort: 0, maxBatch: 1000, predictionLog: { intervalMs: 100 } });
  expect((await admin('traffic', { stable: 1 })).status).toBe(200);
  client = oipClient(server.grpcUrl!);
});

afterAll(async () => {
  children.killAll();
  client?.close();
  if (!closed) await server?.close();
  await pg?.end();
  await runtime?.close();
});

async function offline(version: number): Promise<number[]> {
  const session = await ort.InferenceSession.create(onnx[version]!);
  const out = await session.run({
    hour: new ort.Tensor('float32', Float32Array.from(hours), [ROWS, 1]),
    distance: new ort.Tensor('float32', Float32Array.from(distances), [ROWS, 1]),
    origin: new ort.Tensor('string', origins, [ROWS, 1]),
  });
  await session.release();
  return Array.from(out.probability!.data as Float32Array);
}

test('the gRPC port is given, and ServerLive, ServerReady, ServerMetadata, ModelReady and ModelMetadata answer like REST', async () => {
  expect(server.grpcPort).toBeGreaterThan(0);
  expect(server.grpcUrl).toBe(`127.0.0.1:${server.grpcPort}`);
  expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
  expect(await call(client, 'ServerReady', {})).toEqual({ ready: true });
  const meta = await call(client, 'ServerMetadata', {});
  expect(meta.extensions).toContain('binary_tensor_data');
  expect(((await (await fetch(`${server.url}/v2`)).json()) as { extensions: string[] }).extensions).toEqual(meta.extensions);
  expect(await call(client, 'ModelReady', { name: model })).toEqual({ ready: true });
  expect(await call(client, 'ModelReady', { name: model, version: '1' })).toEqual({ ready: true });
  const modelMeta = await call(client, 'ModelMetadata', { name: model });
  expect(modelMeta).toEqual({
    name: model,
    versions: ['1'],
    platform: 'onnxruntime_onnx',
    inputs: [
      { name: 'hour', datatype: 'FP32', shape: [-1, 1] },
      { name: 'distance', datatype: 'FP32', shape: [-1, 1] },
      { name: 'origin', datatype: 'BYTES', shape: [-1, 1] },
    ],
    outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
  });
  expect(modelMeta).toEqual(await (await fetch(`${server.url}/v2/models/${model}`)).json());
});

test('gRPC typed, gRPC raw, REST JSON and REST binary give the same scores for the same rows; gRPC predictions are logged', async () => {
  const requestId = `grpc-typed-${model}`;
  const typed = await call<InferReply>(client, 'ModelInfer', typedRequest(model), { 'x-request-id': requestId });
  expect(typed.model_version).toBe('1');
  expect(typed.id).toBe(requestId);
  expect(typed.raw_output_contents).toEqual([]);
  expect(typed.outputs[0]).toMatchObject({ name: 'probability', datatype: 'FP32', shape: [ROWS, 1] });
  const viaTyped = typed.outputs[0]!.contents!.fp32_contents;

  const raw = await call<InferReply>(client, 'ModelInfer', rawRequest(model));
  // Raw in, raw out: the output carries no typed contents.
  expect(raw.outputs[0]!.contents).toBeNull();
  expect(raw.raw_output_contents).toHaveLength(1);
  const viaRaw = readFp32(raw.raw_output_contents[0]!);

  const json = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    body: JSON.stringify({
      inputs: [
        { name: 'hour', datatype: 'FP32', shape: [ROWS, 1], data: hours },
        { name: 'distance', datatype: 'FP32', shape: [ROWS, 1], data: distances },
        { name: 'origin', datatype: 'BYTES', shape: [ROWS, 1], data: origins },
      ],
    }),
  });
  expect(json.status).toBe(200);
  const viaJson = ((await json.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data;

  const b = binaryBody();
  const bin = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(b.headerLength) }, body: b.body });
  expect(bin.status).toBe(200);
  expect(bin.headers.get('content-type')).toBe('application/octet-stream');
  const answer = Buffer.from(await bin.arrayBuffer());
  const headerLength = Number(bin.headers.get('inference-header-content-length'));
  const head = JSON.parse(answer.subarray(0, headerLength).toString()) as { model_version: string; outputs: Array<{ name: string; shape: number[]; parameters: { binary_data_size: number }; data?: unknown }> };
  expect(head.model_version).toBe('1');
  expect(head.outputs[0]).toEqual({ name: 'probability', datatype: 'FP32', shape: [ROWS, 1], parameters: { binary_data_size: ROWS * 4 } });
  expect(answer.length).toBe(headerLength + ROWS * 4);
  const viaBinary = readFp32(answer.subarray(headerLength));

  const expected = await offline(1);
  expect(viaTyped).toHaveLength(ROWS);
  viaTyped.forEach((p, i) => expect(Math.abs(p - expected[i]!)).toBeLessThanOrEqual(1e-6));
  // FP32 both ways: every transport carries the same float32 values exactly.
  expect(viaRaw).toEqual(viaTyped);
  expect(viaJson).toEqual(viaTyped);
  expect(viaBinary).toEqual(viaTyped);
  // The scores differ between rows: equal answers are not all one constant.
  expect(new Set(viaTyped).size).toBeGreaterThan(1);

  await server.predictions.flush();
  const logged = await pg.query(`select request_id, inputs, outputs->>'role' as role from prediction_log where request_id like $1 order by request_id`, [`${requestId}#%`]);
  expect(logged.rows).toHaveLength(ROWS);
  expect(logged.rows.find((r: { request_id: string }) => r.request_id === `${requestId}#1`)).toMatchObject({ inputs: { hour: hours[1], distance: distances[1], origin: origins[1] }, role: 'stable' });
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  // The four requests above, ROWS rows each, all on the stable version.
  expect(metrics).toMatch(new RegExp(`^mlops_inference_rows_total\\{model="${model}",version="1",role="stable"\\} ${4 * ROWS}$`, 'm'));
});

test('a bad gRPC request gets INVALID_ARGUMENT naming the field; an unknown model or version gets NOT_FOUND', async () => {
  const bad = async (req: unknown) => grpcError(call(client, 'ModelInfer', req));
  const wrongType = await bad(typedRequest(model, { inputs: [{ ...typedRequest(model).inputs[0]!, datatype: 'INT64' }, ...typedRequest(model).inputs.slice(1)] }));
  expect(wrongType.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(wrongType.details).toBe('input hour: datatype INT64, expected FP32');
  const nan = await bad(typedRequest(model, { inputs: [{ ...typedRequest(model).inputs[0]!, contents: { fp32_contents: [NaN, ...hours.slice(1)] } }, ...typedRequest(model).inputs.slice(1)] }));
  expect([nan.code, nan.details]).toEqual([grpc.status.INVALID_ARGUMENT, 'input hour[0]: NaN is not a finite FP32 number (use null for a missing value)']);
  const short = await bad({ ...rawRequest(model), raw_input_contents: [fp32Bytes(hours.slice(1)), fp32Bytes(distances), bytesElements(origins)] });
  expect([short.code, short.details]).toEqual([grpc.status.INVALID_ARGUMENT, `input hour: raw_input_contents[0] is ${(ROWS - 1) * 4} bytes; ${ROWS} FP32 elements take ${ROWS * 4}`]);
  const missing = await bad(typedRequest(model, { inputs: typedRequest(model).inputs.slice(0, 2) }));
  expect([missing.code, missing.details]).toEqual([grpc.status.INVALID_ARGUMENT, 'input origin is missing']);

  for (const req of [typedRequest('no-such-model'), typedRequest(model, { model_version: '9' }), typedRequest(model, { model_version: 'latest' })]) {
    expect((await bad(req)).code).toBe(grpc.status.NOT_FOUND);
  }
  expect((await grpcError(call(client, 'ModelMetadata', { name: 'no-such-model' }))).code).toBe(grpc.status.NOT_FOUND);
  expect((await grpcError(call(client, 'ModelReady', { name: 'no-such-model' }))).code).toBe(grpc.status.NOT_FOUND);
  // Registered, not loaded on this server: not served here.
  expect((await grpcError(call(client, 'ModelMetadata', { name: model, version: '2' }))).code).toBe(grpc.status.NOT_FOUND);
  // After all that the server still serves.
  expect((await call<InferReply>(client, 'ModelInfer', typedRequest(model))).outputs[0]!.contents!.fp32_contents).toHaveLength(ROWS);
});

test('a REST binary request whose sizes do not add up gets a 400 saying which', async () => {
  const post = async (body: Buffer, headerLength: string) => {
    const res = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': headerLength }, body });
    return { status: res.status, error: ((await res.json()) as { error: string }).error };
  };
  // The sizes add up to the body, but hour's is not its element count × 4.
  const wrongSize = binaryBody({ hour: ROWS * 4 - 4, distance: ROWS * 4 + 4 });
  expect(await post(wrongSize.body, String(wrongSize.headerLength))).toEqual({ status: 400, error: `input hour: binary_data_size is ${ROWS * 4 - 4} bytes; ${ROWS} FP32 elements take ${ROWS * 4}` });
  // They do not add up to the body.
  const leftOver = binaryBody({ hour: ROWS * 4 - 4 });
  expect(await post(leftOver.body, String(leftOver.headerLength))).toEqual({ status: 400, error: expect.stringMatching(/but the inputs' binary_data_size add up to/) });
  const b = binaryBody();
  expect(await post(b.body, String(b.body.length + 1))).toEqual({ status: 400, error: `Inference-Header-Content-Length says the JSON header is ${b.body.length + 1} bytes, but the body has only ${b.body.length}` });
  const noHeader = await fetch(`${server.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: b.body });
  expect(noHeader.status).toBe(400);
  expect(((await noHeader.json()) as { error: string }).error).toMatch(/needs an Inference-Header-Content-Length header/);
});

test('the traffic split applies to gRPC: a canary answers some requests, a pinned version answers as itself', async () => {
  expect((await admin('traffic', { stable: 1, canary: 2, canaryWeight: 50 })).status).toBe(200);
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) seen.add((await call<InferReply>(client, 'ModelInfer', typedRequest(model))).model_version);
  expect([...seen].sort()).toEqual(['1', '2']);
  const pinned = await call<InferReply>(client, 'ModelInfer', typedRequest(model, { model_version: '2' }));
  expect(pinned.model_version).toBe('2');
  const expected = await offline(2);
  pinned.outputs[0]!.contents!.fp32_contents.forEach((p, i) => expect(Math.abs(p - expected[i]!)).toBeLessThanOrEqual(1e-6));
  expect((await admin('traffic', { stable: 1 })).status).toBe(200);
});

test('the compiled server (npm run serve) finds its proto in dist/ and serves gRPC on MLOPS_SERVE_GRPC_PORT', async () => {
  const port = await freePort();
  const child = children.start([compiledEntry('workers/model-server.ts')], { ...process.env, ...testEnv(bucket), MLOPS_SERVE_PORT: '0', MLOPS_SERVE_GRPC_PORT: String(port), MLOPS_SERVE_POLL_MS: '100', MLOPS_LOG_LEVEL: 'WARN' });
  const other = oipClient(`127.0.0.1:${port}`);
  try {
    // It follows the serving state in PostgreSQL, so it serves the same stable version.
    const outcome = await waitFor(
      'the compiled server to serve the model over gRPC',
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) return { exited: child.exitCode ?? child.signalCode };
        return call<InferReply>(other, 'ModelInfer', typedRequest(model)).then((reply) => ({ reply }), () => undefined);
      },
      60_000,
    );
    if (!('reply' in outcome)) throw new Error(`the compiled server exited (${outcome.exited})`);
    const answer = outcome.reply;
    expect(answer.model_version).toBe('1');
    expect(answer.outputs[0]!.contents!.fp32_contents).toEqual(await call<InferReply>(client, 'ModelInfer', typedRequest(model, { model_version: '1' })).then((r) => r.outputs[0]!.contents!.fp32_contents));
  } catch (err) {
    throw new Error(`${(err as Error).message}\nserver stderr: ${children.log()}`);
  } finally {
    other.close();
    children.killAll();
  }
});

test('a gRPC port in use is refused as EADDRINUSE, as the HTTP one is, so a caller can pick another', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  const { port } = blocker.address() as net.AddressInfo;
  try {
    const err = (await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('test-grpc'), adminToken: TOKEN, port: 0, grpcPort: port }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(err.code).toBe('EADDRINUSE');
    expect(err.message).toContain(`gRPC: cannot listen on 127.0.0.1:${port}`);
  } finally {
    blocker.close();
  }
});

test('close() stops the gRPC server too', async () => {
  await server.close();
  closed = true;
  const err = await grpcError(call(client, 'ServerLive', {}));
  expect(err.code).toBe(grpc.status.UNAVAILABLE);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
