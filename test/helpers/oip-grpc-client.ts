import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROJECT_ROOT } from '../../infra/paths';

/** A generated OIP gRPC client: KServe's proto through proto-loader and grpc-js, nothing of the server's. */

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
type Unary = (req: unknown, metadata: grpc.Metadata, cb: Callback<Record<string, unknown>>) => void;
export type OipClient = grpc.Client & Record<'ServerLive' | 'ServerReady' | 'ServerMetadata' | 'ModelReady' | 'ModelMetadata' | 'ModelInfer', Unary>;

export function oipClient(target: string): OipClient {
  const def = protoLoader.loadSync(path.join(PROJECT_ROOT, 'workers/serving/grpc_predict_v2.proto'), { keepCase: true, longs: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  return new pkg.inference.GRPCInferenceService(target, grpc.credentials.createInsecure()) as unknown as OipClient;
}

export function call<T = Record<string, unknown>>(client: OipClient, rpc: keyof OipClient & string, req: unknown, meta: Record<string, string> = {}): Promise<T> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(meta)) metadata.set(k, v);
  return new Promise((resolve, reject) => (client[rpc] as Unary).call(client, req, metadata, (err, res) => (err ? reject(err) : resolve(res as T))));
}
