import { startSharedServices, type SharedServices } from './services';

declare global {
  var __MLOPS_SERVICES__: SharedServices | undefined;
}

export default async function globalSetup(): Promise<void> {
  const services = await startSharedServices();
  globalThis.__MLOPS_SERVICES__ = services;
  // Test workers are forked after this and inherit these.
  Object.assign(process.env, {
    MLOPS_TEST_DATABASE_URL: services.databaseUrl,
    MLOPS_TEST_ADMIN_URL: services.adminUrl,
    MLOPS_TEST_S3_ENDPOINT: services.minio.endpoint,
    MLOPS_TEST_S3_ACCESS_KEY: services.minio.accessKey,
    MLOPS_TEST_S3_SECRET_KEY: services.minio.secretKey,
    MLOPS_TEST_TEMPORAL_CLI: services.temporalCli,
    MLOPS_TEST_MINIO_BINARY: services.minioBinary,
  });
}
