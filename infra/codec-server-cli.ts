import { loadConfig } from './config';
import { MIN_CODEC_TOKEN_LENGTH, startCodecServer } from './codec-server';
import { ConfigError, UserFacingError, runMain } from './errors';
import { createLogger } from './log';

/** `npm run codec-server`: decodes sealed payloads for the Temporal CLI and Web UI until SIGINT/SIGTERM. */
runMain(async () => {
  const config = loadConfig();
  if (!config.codecKeys) throw new ConfigError('no payload keys: set MLOPS_CODEC_KEYS (id:base64key, the current key first) or MLOPS_CODEC_KEYS_FILE');
  const { token, port, host, corsOrigins } = config.codecServer;
  // Checked before listening: a codec server without a token would decrypt for anyone.
  if (!token) throw new ConfigError('MLOPS_CODEC_SERVER_TOKEN is not set: the codec server refuses to start without a token (the Temporal CLI sends it with --codec-auth "Bearer <token>")');
  if (token.length < MIN_CODEC_TOKEN_LENGTH) throw new ConfigError(`MLOPS_CODEC_SERVER_TOKEN: must be at least ${MIN_CODEC_TOKEN_LENGTH} characters`);
  const log = createLogger('codec');
  let server;
  try {
    server = await startCodecServer({ keys: config.codecKeys, token, port, host, corsOrigins, log });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserFacingError(`port ${port} is in use (MLOPS_CODEC_SERVER_PORT)`);
    throw err;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
});
