import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HttpError } from '../../infra/http';
import type { Logger } from '../../infra/log';
import { BadRequest } from './bad-request';
import { SERVER_METADATA, modelMetadata, modelName, modelReadiness, versionNumber } from './describe';
import { decodeGrpcInfer, grpcAnswer } from './grpc-infer';
import { requestIdOf, type Infer } from './inference';
import type { ServerMetrics } from './metrics';
import { NotFound, type ModelStore } from './models';
import { checkInfer } from './oip';
import type { ServingSync } from './sync';

/**
 * The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, the proto KServe and
 * Triton serve), beside the REST API on the same models: inference goes through the same path
 * (routing, checks, prediction log, metrics), and a refused request gets INVALID_ARGUMENT or
 * NOT_FOUND with the same message REST puts in its 400 or 404.
 */

/** Beside this file in the sources and in dist/ (the build copies it), so tsx and node both find it. */
export const PROTO_PATH = path.join(__dirname, 'grpc_predict_v2.proto');
/** keepCase: the proto's field names as they are (`raw_input_contents`); int64 shapes as numbers. */
export const PROTO_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

export interface GrpcDeps {
  store: ModelStore;
  sync: ServingSync;
  infer: Infer;
  metrics: ServerMetrics;
  log: Logger;
  /** True once the server stops: ServerReady says so, like REST readiness. */
  closing(): boolean;
  maxBatch: number;
  maxMessageBytes: number;
}

export interface RunningGrpc {
  /** `host:port`, the target a gRPC client dials. */
  url: string;
  port: number;
  close(): Promise<void>;
}

function loadService(): grpc.ServiceDefinition {
  if (!existsSync(PROTO_PATH)) throw new Error(`the OIP gRPC proto is missing at ${PROTO_PATH}; \`npm run build\` copies it beside the compiled server`);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  return pkg.inference.GRPCInferenceService.service;
}

function codeOf(err: HttpError): grpc.status {
  switch (err.status) {
    case 404:
      return grpc.status.NOT_FOUND;
    case 409:
      return grpc.status.FAILED_PRECONDITION;
    case 413:
      return grpc.status.RESOURCE_EXHAUSTED;
    default:
      return grpc.status.INVALID_ARGUMENT;
  }
}

type Named = { name: string; version: string };

/** The model and version of a ModelReady or ModelMetadata request ("" version: the server's choice). */
function target(req: Named): { name: string; version?: number } {
  if (!req.name) throw new BadRequest('name is required');
  return { name: modelName(req.name), version: req.version ? versionNumber(req.version) : undefined };
}

export async function startGrpcServer(deps: GrpcDeps, host: string, port: number): Promise<RunningGrpc> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': deps.maxMessageBytes });
  const unary =
    <Req, Res>(rpc: string, fn: (call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => fn(call))
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            if (err instanceof HttpError) {
              deps.metrics.badRequest();
              return callback({ code: codeOf(err), details: err.message });
            }
            deps.log.error(`model server: gRPC ${rpc}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
            callback({ code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) });
          },
        );
    };
  const metadataValue = (call: grpc.ServerUnaryCall<unknown, unknown>, key: string) => call.metadata.get(key)[0];

  server.addService(loadService(), {
    ServerLive: unary('ServerLive', () => ({ live: true })),
    ServerReady: unary('ServerReady', () => ({ ready: deps.sync.ready && !deps.closing() })),
    ServerMetadata: unary('ServerMetadata', () => SERVER_METADATA),
    ModelReady: unary<Named, { ready: boolean }>('ModelReady', (call) => {
      const { name, version } = target(call.request);
      const r = modelReadiness(deps.store, deps.sync, name, version);
      if (!r.known) throw new NotFound(`model ${name}${version !== undefined ? ` version ${version}` : ''} is not served here`);
      return { ready: r.ready };
    }),
    ModelMetadata: unary<Named, unknown>('ModelMetadata', (call) => {
      const { name, version } = target(call.request);
      return modelMetadata(deps.store, name, version);
    }),
    ModelInfer: unary<unknown, unknown>('ModelInfer', async (call) => {
      const req = decodeGrpcInfer(call.request);
      const traffic = metadataValue(call, 'x-mlops-traffic');
      const result = await deps.infer({
        name: req.model,
        version: req.version,
        requestId: requestIdOf(metadataValue(call, 'x-request-id')),
        traffic: typeof traffic === 'string' ? traffic : undefined,
        parse: (signature, output) => checkInfer(req.inputs, req.outputs, signature, deps.maxBatch, req.id, output),
      });
      return grpcAnswer(req.model, result, req.raw);
    }),
  });

  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (!err) return resolve(p);
      // Like the HTTP server's: a caller can tell a port in use from other failures.
      const failure: NodeJS.ErrnoException = new Error(`gRPC: cannot listen on ${address}: ${err.message}`);
      if (err.message.includes('EADDRINUSE')) failure.code = 'EADDRINUSE';
      reject(failure);
    }),
  );
  const url = `${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    url,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        // Lets in-flight calls finish, like the HTTP server; a client that never lets go is cut off.
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 10_000);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
