/** `temporal-mlops/model-server`: the Open Inference Protocol (KServe v2) server over HTTP. */
export { startModelServer, type ModelServerOptions, type RunningModelServer } from './server';
export type { Traffic } from './models';
