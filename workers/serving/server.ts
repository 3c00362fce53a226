import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace, type Tracer } from '@opentelemetry/api';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { ArtifactStore } from '../../infra/artifacts';
import type { Database } from '../../infra/db/schema';
import { attachLabels, changeServingState, getModelByName, getModelVersion, getServingTraffic, listServingVersionIds, versionOutputSignatures } from '../../infra/db/repositories';
import { feedbackBody, feedbackProblem, tasksOf } from './feedback';
import type { Logger } from '../../infra/log';
import { ServerMetrics } from './metrics';
import { METRICS_CONTENT_TYPE } from '../../infra/metrics';
import { HttpError, bearerToken, parseJsonBody, readJsonBody, send, tokenMatches } from '../../infra/http';
import { MODEL_NAME, SERVER_METADATA, modelMetadata, modelName, modelReadiness, versionNumber } from './describe';
import { DEFAULT_BATCHING } from './batching';
import { startGrpcServer, type RunningGrpc } from './grpc';
import { createInfer, requestIdOf } from './inference';
import { ModelStore, NotFound } from './models';
import { BadRequest, parseInfer } from './oip';
import { PredictionLog } from './prediction-log';
import { readInferBody, sendInferAnswer } from './rest-infer';
import { ServingSync } from './sync';
import { tracedServe } from './tracing';
import type { OnnxDevice } from '../../infra/onnx-device';

/**
 * The model server: onnxruntime-node behind the Open Inference Protocol REST API (with the binary
 * tensor data extension) and, with `grpcPort`, its gRPC API (see grpc.ts), with traffic
 * split (stable/canary by weight), shadow scoring, hot swap, dynamic batching of concurrent
 * requests into shared onnxruntime runs, a batched prediction log, label
 * feedback, Prometheus metrics, and a token-guarded admin API. Traffic and the versions to hold
 * live in PostgreSQL (`serving_traffic`, `serving_versions`): every replica follows them (see
 * ServingSync), and the admin API writes them there, never only to this process's memory.
 */

export interface ModelServerOptions {
  db: Kysely<Database>;
  artifacts: ArtifactStore;
  log: Logger;
  port?: number;
  host?: string;
  /** The OIP gRPC API (`inference.GRPCInferenceService`) on this port of `host`; 0 picks a free one; none without. */
  grpcPort?: number;
  /** Admin and feedback API token; without one those endpoints answer 403. */
  adminToken?: string;
  maxBodyBytes?: number;
  maxBatch?: number;
  /** Dynamic batching (see batching.ts): the longest a request waits for others (ms; 0: off) and the rows a batch holds at most. */
  batching?: { maxDelayMs?: number; maxRows?: number };
  predictionLog?: { intervalMs?: number; batchSize?: number; maxBuffered?: number };
  /** Following the serving state in PostgreSQL: poll interval, heartbeat interval, the URL other processes reach this server at. */
  serving?: { pollMs?: number; heartbeatMs?: number; advertiseUrl?: string; serverId?: string };
  /** Server spans (admin and feedback calls; other requests whose caller sends a traceparent); none without. */
  tracer?: Tracer;
  /** Where loaded versions run (MLOPS_ONNX_DEVICE): `cuda` tries onnxruntime's CUDA provider on GPU 0, falling back to the CPU with a warning. */
  onnxDevice?: OnnxDevice;
}

export interface RunningModelServer {
  url: string;
  port: number;
  /** The gRPC target (`host:port`) a client dials, when `grpcPort` was given. */
  grpcUrl?: string;
  grpcPort?: number;
  store: ModelStore;
  metrics: ServerMetrics;
  predictions: PredictionLog;
  sync: ServingSync;
  /** Resolves once the serving state read at start is applied (every version it names loaded, or failed and being retried). */
  loaded: Promise<void>;
  close(): Promise<void>;
}

const trafficBody = z
  .object({
    stable: z.number().int().min(1),
    canary: z.number().int().min(1).optional(),
    canaryWeight: z.number().min(0).max(100).default(0),
    shadow: z.number().int().min(1).optional(),
  })
  .strict();
const versionBody = z.object({ version: z.number().int().min(1) }).strict();
/** The method of each route under /v2/models/{name}[/versions/{v}], for a 405 with `Allow` on any other. */
const MODEL_ROUTES: Record<string, string> = { '': 'GET', ready: 'GET', infer: 'POST', feedback: 'POST' };
const TOP_ROUTES: Record<string, string> = { '/v2': 'GET', '/v2/health/live': 'GET', '/v2/health/ready': 'GET', '/metrics': 'GET' };

/** A path WHATWG URL parsing leaves as it is: no query, no dot or empty segments, no escapes, no backslashes. */
const PLAIN_PATH = /^(?:\/[\w~-][\w.~-]*)+\/?$|^\/$/;

/** The request's pathname as `new URL` gives it, without parsing one for the usual plain path. */
function pathnameOf(target: string): string {
  return PLAIN_PATH.test(target) ? target : new URL(target, 'http://localhost').pathname;
}

export async function startModelServer(opts: ModelServerOptions): Promise<RunningModelServer> {
  const store = new ModelStore(opts.db, opts.artifacts, { device: opts.onnxDevice ?? 'cpu', warn: (m) => opts.log.warn(m) });
  const predictions = new PredictionLog(opts.db, { ...opts.predictionLog, onError: (err) => opts.log.warn(`prediction log: ${err instanceof Error ? err.message : String(err)}`) });
  // Its endpoint is known once the server listens.
  const sync = new ServingSync(opts.db, store, opts.log, {
    serverId: opts.serving?.serverId ?? randomUUID(),
    endpoint: opts.serving?.advertiseUrl ?? '',
    pollMs: opts.serving?.pollMs ?? 250,
    heartbeatMs: opts.serving?.heartbeatMs ?? 1000,
  });
  const metrics = new ServerMetrics(() => ({
    predictionLog: { pending: predictions.pending, written: predictions.written, dropped: predictions.dropped, failures: predictions.failures },
    ready: sync.ready,
    missingVersions: sync.missing().length,
    errorsDropped: sync.errorsDropped,
  }));
  let closing = false;
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const maxBatch = opts.maxBatch ?? 10_000;

  const infer = createInfer({
    store,
    predictions,
    metrics,
    sync,
    log: opts.log,
    batching: { maxDelayMs: opts.batching?.maxDelayMs ?? DEFAULT_BATCHING.maxDelayMs, maxRows: opts.batching?.maxRows ?? DEFAULT_BATCHING.maxRows },
  });

  const admin = (req: http.IncomingMessage) => {
    if (!opts.adminToken) throw new BadRequest('the admin API is disabled: set MLOPS_ADMIN_TOKEN on the model server', 403);
    if (!tokenMatches(bearerToken(req), opts.adminToken)) throw new BadRequest('missing or wrong bearer token', 401);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const pathname = pathnameOf(req.url ?? '/');
    const parts = pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    if (method === 'GET' && pathname === '/v2/health/live') return send(res, 200, { live: true });
    if (method === 'GET' && pathname === '/v2/health/ready') {
      const missing = sync.missing();
      const ready = sync.ready && !closing;
      return send(res, ready ? 200 : 503, { ready, ...(ready ? {} : { missing, ...(closing ? { stopping: true } : {}), ...(sync.loadErrors.length ? { loadErrors: sync.loadErrors } : {}) }) });
    }
    if (method === 'GET' && pathname === '/v2') return send(res, 200, SERVER_METADATA);
    if (method === 'GET' && pathname === '/metrics') {
      return send(res, 200, await metrics.render(), { 'content-type': METRICS_CONTENT_TYPE });
    }

    if (parts[0] === 'v2' && parts[1] === 'models' && parts[2]) {
      const name = modelName(decodeURIComponent(parts[2]));
      let rest = parts.slice(3);
      let version: number | undefined;
      if (rest[0] === 'versions') {
        version = versionNumber(rest[1] ?? '');
        rest = rest.slice(2);
      }
      if (method === 'GET' && rest.length === 0) return send(res, 200, modelMetadata(store, name, version));
      if (method === 'GET' && rest[0] === 'ready' && rest.length === 1) {
        const r = modelReadiness(store, sync, name, version);
        const status = r.ready ? 200 : r.known ? 503 : 404;
        if (version !== undefined) return send(res, status, { name, version: String(version), ready: r.ready });
        return send(res, status, r.ready ? { name, ready: true, generation: r.generation } : { name, ready: false, missing: r.missing });
      }
      if (method === 'POST' && rest[0] === 'infer' && rest.length === 1) {
        const traffic = req.headers['x-mlops-traffic'];
        const result = await infer({
          name,
          version,
          requestId: requestIdOf(req.headers['x-request-id']),
          traffic: typeof traffic === 'string' ? traffic : undefined,
          // Read once the model is known: an unknown one is a 404 whatever the body.
          parse: async (signature, output) => {
            const { json, binary } = await readInferBody(req, maxBody);
            return parseInfer(json, signature, maxBatch, binary, output);
          },
        });
        return sendInferAnswer(res, name, result);
      }
      if (method === 'POST' && rest[0] === 'feedback' && rest.length === 1) {
        admin(req);
        const body = parseJsonBody(feedbackBody, await readJsonBody(req, maxBody), 'feedback');
        const labels = 'labels' in body ? body.labels : [body];
        const model = await getModelByName(opts.db, name);
        if (!model) throw new NotFound(`model ${name} is not in the registry`);
        const problem = feedbackProblem(labels, tasksOf(await versionOutputSignatures(opts.db, model.id)), 'labels' in body);
        if (problem) throw new HttpError(problem);
        await predictions.flush();
        const attached = await attachLabels(opts.db, model.id, labels.map((l) => ({ requestId: l.request_id, label: l.label })));
        return send(res, 200, { attached, unknown: labels.length - attached });
      }
      const allowed = MODEL_ROUTES[rest.join('/')];
      if (allowed) return send(res, 405, { error: `${method} is not allowed on ${pathname}; use ${allowed}` }, { allow: allowed });
      throw new NotFound(`no route for ${method} ${pathname}`);
    }
    const allowed = TOP_ROUTES[pathname];
    if (allowed && method !== allowed) return send(res, 405, { error: `${method} is not allowed on ${pathname}; use ${allowed}` }, { allow: allowed });

    if (parts[0] === 'admin') {
      admin(req);
      if (method === 'GET' && parts[1] === 'models' && parts.length === 2) {
        return send(
          res,
          200,
          [...store.models.values()].map((s) => ({ name: s.name, traffic: s.traffic, generation: s.generation, versions: [...s.versions.values()].map((v) => ({ version: v.version, sha256: v.sha256, loadedAt: v.loadedAt, inflight: v.inflight, device: v.device })) })),
        );
      }
      if (method === 'POST' && parts[1] === 'models' && parts[2] && parts.length === 4) {
        const name = decodeURIComponent(parts[2]);
        if (!MODEL_NAME.test(name)) throw new BadRequest(`model name ${JSON.stringify(name)} is not valid`);
        const body = await readJsonBody(req, maxBody);
        // Each loads here first (so a version that cannot be served is refused before anything is
        // written), then writes the database — which every replica follows — and applies it here.
        if (parts[3] === 'load') {
          const v = await store.load(name, parseJsonBody(versionBody, body, 'load request').version);
          const generation = await opts.db.transaction().execute((trx) => changeServingState(trx, { modelId: v.modelId, by: 'admin', add: [v.modelVersionId] }));
          await sync.syncModel(v.modelId);
          return send(res, 200, { name, version: v.version, sha256: v.sha256, generation });
        }
        if (parts[3] === 'traffic') {
          const t = parseJsonBody(trafficBody, body, 'traffic');
          const loaded = await Promise.all([t.stable, t.canary, t.shadow].map((v) => (v !== undefined ? store.load(name, v) : undefined)));
          const [stable, canary, shadow] = loaded;
          const generation = await opts.db.transaction().execute((trx) =>
            changeServingState(trx, {
              modelId: stable!.modelId,
              by: 'admin',
              traffic: { stableVersionId: stable!.modelVersionId, canaryVersionId: canary?.modelVersionId ?? null, canaryWeight: canary ? t.canaryWeight : 0, shadowVersionId: shadow?.modelVersionId ?? null },
            }),
          );
          await sync.syncModel(stable!.modelId);
          const state = store.models.get(name)!;
          opts.log.info(`model ${name}: traffic ${JSON.stringify(state.traffic)} (generation ${generation}, by the admin API)`);
          return send(res, 200, { name, traffic: state.traffic, generation });
        }
        if (parts[3] === 'unload') {
          const { version } = parseJsonBody(versionBody, body, 'unload request');
          const model = await getModelByName(opts.db, name);
          const mv = model ? await getModelVersion(opts.db, model.id, version) : undefined;
          if (!model || !mv || (!store.models.get(name)?.versions.has(version) && !(await listServingVersionIds(opts.db, model.id)).includes(mv.id))) throw new NotFound(`model ${name} version ${version} is not loaded`);
          const traffic = await getServingTraffic(opts.db, model.id);
          const t = store.models.get(name)?.traffic;
          if ((traffic && [traffic.stable_version_id, traffic.canary_version_id, traffic.shadow_version_id].includes(mv.id)) || (t && [t.stable, t.canary, t.shadow].includes(version))) {
            throw new BadRequest(`model ${name} version ${version} still receives traffic; change the traffic first`, 409);
          }
          const generation = await opts.db.transaction().execute((trx) => changeServingState(trx, { modelId: model.id, by: 'admin', remove: [mv.id] }));
          await sync.syncModel(model.id);
          if (store.models.get(name)?.versions.has(version)) await store.unload(name, version);
          return send(res, 200, { name, unloaded: version, generation });
        }
      }
      throw new NotFound(`no route for ${method} ${pathname}`);
    }
    throw new NotFound(`no route for ${method} ${pathname}`);
  };

  const serve = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        metrics.badRequest();
        // A refused body may still be arriving: answer, then close instead of reading it.
        const headers: Record<string, string> = err.status === 413 ? { connection: 'close' } : {};
        if (!res.headersSent) send(res, err.status, { error: err.message }, headers);
        if (err.status === 413) req.destroy();
        return;
      }
      opts.log.error(`model server: ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (err instanceof Error) trace.getActiveSpan()?.recordException(err);
      if (!res.headersSent) send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  };
  const server: http.Server = http.createServer(tracedServe(opts.tracer, () => (server.address() as AddressInfo).port, serve));
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  sync.opts.endpoint ||= url;
  let grpc: RunningGrpc | undefined;
  try {
    if (opts.grpcPort !== undefined) {
      grpc = await startGrpcServer(
        { store, sync, infer, metrics, log: opts.log, closing: () => closing, maxBatch, maxMessageBytes: maxBody },
        opts.host ?? '127.0.0.1',
        opts.grpcPort,
      );
    }
    // A server that cannot reach its database says so at start.
    await sync.register();
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await grpc?.close();
    await predictions.close();
    throw err;
  }
  // Listening already (readiness answers 503 meanwhile); returns once the state read at start is applied.
  const loaded = sync.run();
  await loaded;
  opts.log.info(`model server ${sync.opts.serverId} listening on ${url}${grpc ? ` (gRPC on ${grpc.url})` : ''}, following the serving state every ${sync.opts.pollMs} ms`);
  return {
    url,
    port,
    grpcUrl: grpc?.url,
    grpcPort: grpc?.port,
    store,
    metrics,
    predictions,
    sync,
    loaded,
    close: async () => {
      // Not ready from now on; stop following; drain requests; write what is buffered; say we stopped.
      closing = true;
      await loaded.catch(() => undefined);
      await Promise.all([
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        }),
        grpc?.close(),
      ]);
      await predictions.close();
      await sync.close();
      await store.close();
    },
  };
}
