import { stopSharedServices } from './services';

export default async function globalTeardown(): Promise<void> {
  if (globalThis.__MLOPS_SERVICES__) await stopSharedServices(globalThis.__MLOPS_SERVICES__);
}
