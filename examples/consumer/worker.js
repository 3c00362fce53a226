// The team's worker process: its own task queue names and PostgreSQL schema, the plugin from
// the installed package, and one workflow of its own beside ours.
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { MlopsPlugin, discoverGpuPool } from 'temporal-mlops';

const env = process.env;
const plugin = new MlopsPlugin({
  taskQueues: { prefix: env.ACME_QUEUE_PREFIX ?? 'acme-ml' },
  database: { url: env.DATABASE_URL, schema: env.ACME_DB_SCHEMA ?? 'acme_mlops' },
  artifacts: {
    root: env.ARTIFACT_ROOT,
    s3: env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT, accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } : undefined,
  },
  modelServer: { url: env.ACME_MODEL_SERVER_URL ?? 'http://127.0.0.1:8000', adminToken: env.ACME_MODEL_SERVER_TOKEN },
  // No GPU on a laptop: serve the GPU queue on the CPU, loudly.
  gpus: await discoverGpuPool({ allowCpu: true }),
});

const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
const { control, cpu, gpu } = plugin.taskQueues;
const workers = await Promise.all([
  Worker.create({ connection, taskQueue: control, workflowsPath: fileURLToPath(new URL('./workflows.js', import.meta.url)), plugins: [plugin] }),
  Worker.create({ connection, taskQueue: cpu, plugins: [plugin] }),
  Worker.create({ connection, taskQueue: gpu, plugins: [plugin] }),
]);
console.log(`acme worker polling ${workers.map((w) => w.options.taskQueue).join(', ')}`);
const stop = () => workers.forEach((w) => w.getState() === 'RUNNING' && w.shutdown());
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
await Promise.all(workers.map((w) => w.run()));
await plugin.close();
await connection.close();
