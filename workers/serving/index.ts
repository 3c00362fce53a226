/** `temporal-mlops/model-server`: the Open Inference Protocol (KServe v2) server over HTTP. */
export { startModelServer, type ModelServerOptions, type RunningModelServer } from './server';
export type { Traffic } from './models';
/** The OIP gRPC proto the server serves (shipped in the package), for generating a client from. */
export { PROTO_PATH as OIP_GRPC_PROTO_PATH } from './grpc';
