import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { Client, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { compiledEntry } from '../../infra/entry';
import { freePort } from '../../infra/processes';
import { MlopsPlugin, type MlopsPluginOptions } from '../../workers/plugin';
import type { WorkerRuntime } from '../../workers/runtime';
import { promotionWorkflowId, type PromotionInput, type PromotionStatus } from '../../workflows/promotion';
import { createTemporalEnv, openTestRuntime, testEnv } from '../helpers/real';
import { registeredModels, type RegisteredModels } from '../helpers/registered-models';
import { workerGroup } from '../helpers/run-entry';
import { waitFor } from '../helpers/wait';
import { SILENT_LOGGER } from '../helpers/workers';
import { constantRow } from '../helpers/serving';

/**
 * OpenTelemetry end to end: a real OTLP/HTTP receiver (JSON), real Temporal, the model server
 * as its own process with the OTEL_* variables. A promotion started through a traced plugin's
 * Client makes one trace: StartWorkflow → RunWorkflow → StartActivity → RunActivity → the model
 * server's span of the contract-test request. With tracing off nothing of the run arrives.
 */

const TOKEN = 'tracing-test-token-0123456';
const bucket = `tracing-${randomUUID().slice(0, 8)}`;
const SERVER_KIND = 2; // OTLP's SPAN_KIND_SERVER

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

type OtlpValue = { stringValue?: string; intValue?: number | string; boolValue?: boolean; doubleValue?: number };
type OtlpAttributes = Array<{ key: string; value: OtlpValue }>;
interface OtlpRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttributes };
    scopeSpans?: Array<{ spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttributes }> }>;
  }>;
}

const valueOf = (v: OtlpValue): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue;
const attributesOf = (a: OtlpAttributes | undefined) => Object.fromEntries((a ?? []).map((x) => [x.key, valueOf(x.value)]));

/** A collector's OTLP/HTTP traces endpoint, keeping what it is sent. */
async function startReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; requests: number; close(): Promise<void> }> {
  const state = { spans: [] as ReceivedSpan[], requests: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(404).end();
        return;
      }
      state.requests++;
      const raw = Buffer.concat(chunks);
      const body = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')) as OtlpRequest;
      for (const rs of body.resourceSpans ?? []) {
        const service = String(attributesOf(rs.resource?.attributes)['service.name']);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            state.spans.push({ service, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, kind: s.kind, attributes: attributesOf(s.attributes) });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get spans() {
      return state.spans;
    },
    get requests() {
      return state.requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let models: RegisteredModels;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let serverUrl: string;
const children = workerGroup();
const plugins: MlopsPlugin[] = [];

function plugin(extra: Partial<MlopsPluginOptions>): MlopsPlugin {
  const p = new MlopsPlugin({
    config: { ...runtime.config, modelServer: { url: serverUrl, adminToken: TOKEN } },
    database: { db: runtime.db, schema: runtime.config.databaseSchema },
    artifacts: runtime.artifacts,
    migrate: false,
    taskQueues: { prefix: `trace-${randomUUID().slice(0, 6)}` },
    ...extra,
  });
  plugins.push(p);
  return p;
}

const input = (model: string, version: number): PromotionInput => ({ model, version, strategy: 'direct', loadTest: { seconds: 0.5, concurrency: 2 }, gates: { maxP99Ms: 5000 } }) as PromotionInput;

/** A promotion through a Client and a control Worker both built with `p`. */
async function promoteWith(p: MlopsPlugin, model: string, version: number): Promise<PromotionStatus> {
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue: p.taskQueues.control, plugins: [p] });
  const client = new Client({ connection: env.connection, namespace: env.namespace ?? 'default', plugins: [p] });
  // runWorker's finally flushes the plugin's spans before this resolves.
  return worker.runUntil(async () => (await client.workflow.execute('promotion', { taskQueue: p.taskQueues.control, workflowId: promotionWorkflowId(model), args: [input(model, version)] })) as PromotionStatus);
}

/** An admin call as an operator's traced script would make it: with a traceparent of its own. */
async function tracedAdminCall(): Promise<{ traceId: string; parentSpanId: string }> {
  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');
  const res = await fetch(`${serverUrl}/admin/models`, { headers: { authorization: `Bearer ${TOKEN}`, traceparent: `00-${traceId}-${parentSpanId}-01` } });
  expect(res.status).toBe(200);
  return { traceId, parentSpanId };
}

/** The chain of parents of `span` within its trace, nearest first. */
function ancestors(span: ReceivedSpan, all: ReceivedSpan[]): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let s: ReceivedSpan | undefined = span; s?.parentSpanId; ) {
    const parentId: string = s.parentSpanId;
    s = all.find((x) => x.traceId === span.traceId && x.spanId === parentId);
    if (s) chain.push(s);
  }
  return chain;
}

beforeAll(async () => {
  [env, runtime, receiver] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket), startReceiver()]);
  models = await registeredModels(runtime, 8000);
  const port = await freePort();
  serverUrl = `http://127.0.0.1:${port}`;
  // The model server's tracing comes from the standard variables, as in production.
  children.start([compiledEntry('workers/model-server.ts')], {
    ...process.env,
    ...testEnv(bucket),
    MLOPS_SERVE_PORT: String(port),
    MLOPS_ADMIN_TOKEN: TOKEN,
    MLOPS_SERVE_POLL_MS: '100',
    MLOPS_SERVE_HEARTBEAT_MS: '200',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  await waitFor('model server ready', async () => ((await fetch(`${serverUrl}/v2/health/ready`)).ok ? true : undefined), 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\nmodel server log:\n${children.log()}`);
  });
});

afterAll(async () => {
  children.killAll();
  for (const p of plugins) await p.close();
  await receiver?.close();
  await runtime?.close();
  await env?.teardown();
  models?.close();
});

test('tracing off (the default): a promotion sends no span, and its requests to the model server carry no trace', async () => {
  // A traced plugin in the same process registers the OpenTelemetry globals (context manager, W3C propagator): still nothing leaks from the untraced one.
  plugin({ tracing: { url: `${receiver.url}/v1/traces`, protocol: 'http/json' } });
  const off = plugin({});
  expect(off.tracing).toBeUndefined();
  const model = `trace-off-${randomUUID().slice(0, 6)}`;
  const version = await models.register(model, 'real', 10);
  expect((await promoteWith(off, model, version)).outcome).toBe('promoted');
  // The server exports in order: once a later traced call's span is in, an earlier contract-test span would be too.
  const marker = await tracedAdminCall();
  await waitFor('the traced admin call', async () => (receiver.spans.some((s) => s.traceId === marker.traceId) ? true : undefined), 30_000);
  expect(receiver.spans.map((s) => `${s.service} ${s.name}`)).toEqual(['mlops-serve GET /admin/models']);
});

test('tracing on: one trace from the client through the workflow and its activities to the model server', async () => {
  const on = plugin({ tracing: { url: `${receiver.url}/v1/traces`, protocol: 'http/json', serviceName: 'tracing-test-worker' } });
  expect(on.tracing?.serviceName).toBe('tracing-test-worker');
  const model = `trace-on-${randomUUID().slice(0, 6)}`;
  const version = await models.register(model, 'real', 10);
  const status = await promoteWith(on, model, version);
  expect(status.outcome).toBe('promoted');

  const all = () => receiver.spans;
  const start = await waitFor('the client span', async () => all().find((s) => s.name === 'StartWorkflow:promotion' && s.service === 'tracing-test-worker'), 30_000);
  const inTrace = () => all().filter((s) => s.traceId === start.traceId);
  const contract = await waitFor(
    "the model server's span of the contract test",
    async () => inTrace().find((s) => s.service === 'mlops-serve' && s.name === 'POST /v2/models/{name}/versions/{version}/infer'),
    30_000,
  );
  const byName = (name: string) => inTrace().find((s) => s.name === name);
  await waitFor('the workflow and activity spans', async () => (byName('RunWorkflow:promotion') && byName('RunActivity:contractTest') && byName('RunActivity:setProduction') ? true : undefined), 30_000);

  // The client span is the root; the workflow runs under it, each activity under the workflow's StartActivity span.
  expect(start.parentSpanId).toBeUndefined();
  const run = byName('RunWorkflow:promotion')!;
  expect(run.parentSpanId).toBe(start.spanId);
  for (const activity of ['currentProduction', 'deploy', 'contractTest', 'loadTest', 'setTraffic', 'setProduction']) {
    const runActivity = byName(`RunActivity:${activity}`);
    const startActivity = byName(`StartActivity:${activity}`);
    expect({ activity, run: !!runActivity, start: !!startActivity }).toEqual({ activity, run: true, start: true });
    expect(runActivity!.parentSpanId).toBe(startActivity!.spanId);
    expect(startActivity!.parentSpanId).toBe(run.spanId);
    expect(runActivity!.service).toBe('tracing-test-worker');
  }
  // The model server's span: a server span of its own service, child of the contract-test activity, reaching back to the client.
  expect(contract.kind).toBe(SERVER_KIND);
  expect(contract.parentSpanId).toBe(byName('RunActivity:contractTest')!.spanId);
  expect(ancestors(contract, all()).map((s) => s.name)).toEqual(['RunActivity:contractTest', 'StartActivity:contractTest', 'RunWorkflow:promotion', 'StartWorkflow:promotion']);
  expect(contract.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/v2/models/{name}/versions/{version}/infer', 'http.response.status_code': 200, 'mlops.model': model, 'mlops.model.version': version });
  // The load test's many requests stay untraced (its latency is what it measures).
  expect(inTrace().filter((s) => s.service === 'mlops-serve').map((s) => s.name)).toEqual(['POST /v2/models/{name}/versions/{version}/infer']);
  // Every span of the run is in this one trace.
  expect(all().filter((s) => s.service === 'tracing-test-worker' && s.traceId !== start.traceId).map((s) => s.name)).toEqual([]);
});

test("the model server's admin calls: a server span each, joined to the caller's trace when it sends one; untraced inference gets none", async () => {
  const before = receiver.spans.length;
  const model = `trace-admin-${randomUUID().slice(0, 6)}`;
  const version = await models.register(model, 'real', 10);
  const admin = (action: string, body: unknown) =>
    fetch(`${serverUrl}/admin/models/${model}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  // No traceparent: a root span of the server's own.
  expect((await admin('traffic', { stable: version })).status).toBe(200);
  const infer = await fetch(`${serverUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    body: JSON.stringify(constantRow(models.data.features, { number: 10, text: 'ORD' })),
  });
  expect(infer.status).toBe(200);
  expect((await fetch(`${serverUrl}/admin/models`)).status).toBe(401);
  const caller = await tracedAdminCall();
  const joined = await waitFor('the traced admin call', async () => receiver.spans.find((s) => s.traceId === caller.traceId), 30_000);
  expect(joined).toMatchObject({ service: 'mlops-serve', name: 'GET /admin/models', kind: SERVER_KIND, parentSpanId: caller.parentSpanId, attributes: expect.objectContaining({ 'http.response.status_code': 200 }) });
  const later = receiver.spans.slice(before).filter((s) => s.traceId !== caller.traceId);
  expect(later.map((s) => ({ name: s.name, root: s.parentSpanId === undefined, status: s.attributes['http.response.status_code'], model: s.attributes['mlops.model'] }))).toEqual([
    { name: 'POST /admin/models/{name}/traffic', root: true, status: 200, model },
    { name: 'GET /admin/models', root: true, status: 401, model: undefined },
  ]);
});

test('a bundle prebuilt with bundleWorkflowCode({ plugins }) carries the workflow interceptors', async () => {
  const p = plugin({ tracing: { url: `${receiver.url}/v1/traces`, protocol: 'http/json', serviceName: 'tracing-test-bundled' } });
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), plugins: [p], logger: SILENT_LOGGER });
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue: p.taskQueues.control, plugins: [p], workflowBundle });
  const client = new Client({ connection: env.connection, namespace: env.namespace ?? 'default', plugins: [p] });
  const model = `trace-bundle-${randomUUID().slice(0, 6)}`;
  // The rollback of a model nobody registered: its first activity fails, then the workflow.
  const failed = await worker.runUntil(client.workflow.execute('promotion', { taskQueue: p.taskQueues.control, workflowId: promotionWorkflowId(model), args: [{ model, rollback: true }] }).catch((err: unknown) => err));
  expect(failed).toBeInstanceOf(WorkflowFailedError);
  const mine = () => receiver.spans.filter((s) => s.service === 'tracing-test-bundled');
  const run = await waitFor('the workflow span from the prebuilt bundle', async () => mine().find((s) => s.name === 'RunWorkflow:promotion'), 30_000);
  const start = mine().find((s) => s.name === 'StartWorkflow:promotion')!;
  expect(run.parentSpanId).toBe(start.spanId);
  const activity = mine().find((s) => s.name === 'RunActivity:currentProduction');
  expect(activity && ancestors(activity, receiver.spans).map((s) => s.name)).toEqual(['StartActivity:currentProduction', 'RunWorkflow:promotion', 'StartWorkflow:promotion']);
});
