import { parseArgs } from 'node:util';
import { connectClient } from '../client/connection';
import { loadConfig } from '../infra/config';
import { ConfigError, UserFacingError, runMain } from '../infra/errors';
import { createLogger } from '../infra/log';
import { shutdownTracing } from '../infra/tracing';
import { MIN_TOKEN_LENGTH, startWebhookServer } from './triggers/webhook';

/**
 * `npm run webhook`: the HTTP trigger (Alertmanager and plain retrain requests → `retrain`
 * signals to `model/<name>`) until SIGINT/SIGTERM. Temporal is reached like the Temporal CLI
 * does (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, …).
 */
runMain(async () => {
  const { values: args } = parseArgs({ args: process.argv.slice(2), options: { port: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (args.help) {
    process.stdout.write('usage: npm run webhook [-- --port 8010 --host 127.0.0.1]   (MLOPS_WEBHOOK_TOKEN required; MLOPS_WEBHOOK_PORT, MLOPS_WEBHOOK_HOST, TEMPORAL_ADDRESS)\n');
    return;
  }
  const config = loadConfig({ ...process.env, ...(args.port ? { MLOPS_WEBHOOK_PORT: args.port } : {}), ...(args.host ? { MLOPS_WEBHOOK_HOST: args.host } : {}) });
  const { token, port, host } = config.webhook;
  // Checked before connecting: an unguarded trigger endpoint must never come up, even briefly.
  if (!token) throw new ConfigError('MLOPS_WEBHOOK_TOKEN is not set: the webhook refuses to start without a token (callers send it as "Authorization: Bearer <token>")');
  if (token.length < MIN_TOKEN_LENGTH) throw new ConfigError(`MLOPS_WEBHOOK_TOKEN: must be at least ${MIN_TOKEN_LENGTH} characters`);
  const log = createLogger('webhook');
  const { client, connection, address } = await connectClient();
  let server;
  try {
    server = await startWebhookServer({ client, token, port, host, log, taskQueue: config.taskQueues.control });
  } catch (err) {
    await connection.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserFacingError(`port ${port} is in use (MLOPS_WEBHOOK_PORT)`);
    throw err;
  }
  log.info(`signalling model/<name> workflows on Temporal at ${address}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info('stopping');
  await server.close();
  await connection.close();
  await shutdownTracing();
});
