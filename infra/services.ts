import fs from 'node:fs/promises';
import path from 'node:path';
import { ManagedProcess, canConnect, freePort, portIsFree, waitFor } from './processes';

export interface TemporalDevServer {
  address: string;
  uiUrl: string;
  /** The server's own Prometheus metrics (task dispatch, persistence, eager execution). */
  metricsUrl: string;
  namespace: string;
  process: ManagedProcess;
}

/**
 * Dynamic config that takes the dev server's task dispatch from ~100 ms per activity round trip
 * to a few ms: each history shard's queue reader is rate limited to 20 polls/s (burst 20) by
 * default, so a sequential chain of tasks waits ~44 ms for a token at every hop once the burst
 * is spent; and eager activity execution hands an activity scheduled by a workflow task to the
 * worker that completed it, skipping the matching round trip when the queues agree. Every dev
 * server we start (dev stack, demo, bench, tests) runs with it; `npm run bench -- ct` measures it.
 */
export const DEV_SERVER_DISPATCH_CONFIG = [
  '--dynamic-config-value',
  'history.transferProcessorMaxPollRPS=10000',
  '--dynamic-config-value',
  'history.timerProcessorMaxPollRPS=10000',
  '--dynamic-config-value',
  'system.enableActivityEagerExecution=true',
];

/**
 * Dynamic config our dev servers run with: fast dispatch (above); fairness (and with it the
 * priority-aware matcher), so a model's steps queue by their priority and fairness key; and one
 * partition per task queue, because the order holds within a partition and a dev server needs
 * no more than one.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = [
  ...DEV_SERVER_DISPATCH_CONFIG,
  '--dynamic-config-value',
  'matching.enableFairness=true',
  '--dynamic-config-value',
  'matching.numTaskqueueReadPartitions=1',
  '--dynamic-config-value',
  'matching.numTaskqueueWritePartitions=1',
];

/**
 * Starts `temporal server start-dev` on loopback. Uses the standard ports (7233, UI 8233) when
 * they are free, so the Temporal CLI works without flags; otherwise free ones.
 */
export async function startTemporalDevServer(opts: {
  cli: string;
  stateDir: string;
  dbFilename?: string;
  namespace?: string;
  preferStandardPorts?: boolean;
  /** Both ports given: a restart of the same server, where its clients already point. */
  ports?: { grpc: number; ui: number; metrics?: number };
}): Promise<TemporalDevServer> {
  const host = '127.0.0.1';
  const standard = !opts.ports && opts.preferStandardPorts && (await portIsFree(7233)) && (await portIsFree(8233));
  const port = opts.ports?.grpc ?? (standard ? 7233 : await freePort());
  const uiPort = opts.ports?.ui ?? (standard ? 8233 : await freePort());
  const metricsPort = opts.ports?.metrics ?? (await freePort());
  const namespace = opts.namespace ?? 'default';
  await fs.mkdir(opts.stateDir, { recursive: true });
  const args = ['server', 'start-dev', '--ip', host, '--port', String(port), '--ui-port', String(uiPort), '--metrics-port', String(metricsPort), '--namespace', namespace, '--log-level', 'warn', ...DEV_SERVER_DYNAMIC_CONFIG];
  if (opts.dbFilename) args.push('--db-filename', opts.dbFilename);
  const proc = ManagedProcess.start('temporal', opts.cli, args, { logFile: path.join(opts.stateDir, 'temporal.log') });
  await waitFor('Temporal dev server', () => canConnect(host, port), { timeoutMs: 60_000, proc });
  return { address: `${host}:${port}`, uiUrl: `http://${host}:${uiPort}`, metricsUrl: `http://${host}:${metricsPort}/metrics`, namespace, process: proc };
}

export interface MinioServer {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  process: ManagedProcess;
}

export async function startMinio(opts: {
  binary: string;
  dataDir: string;
  logDir: string;
  port?: number;
  preferStandardPort?: boolean;
  accessKey?: string;
  secretKey?: string;
}): Promise<MinioServer> {
  const host = '127.0.0.1';
  const port = opts.port ?? (opts.preferStandardPort && (await portIsFree(9000)) ? 9000 : await freePort());
  const accessKey = opts.accessKey ?? 'mlopsdev';
  const secretKey = opts.secretKey ?? 'mlopsdev-secret';
  await fs.mkdir(opts.dataDir, { recursive: true });
  await fs.mkdir(opts.logDir, { recursive: true });
  const proc = ManagedProcess.start('minio', opts.binary, ['server', opts.dataDir, '--address', `${host}:${port}`, '--quiet'], {
    logFile: path.join(opts.logDir, 'minio.log'),
    env: {
      ...process.env,
      MINIO_ROOT_USER: accessKey,
      MINIO_ROOT_PASSWORD: secretKey,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
      MINIO_CALLHOME_ENABLE: 'off',
    },
  });
  const endpoint = `http://${host}:${port}`;
  await waitFor(
    'MinIO',
    async () => {
      try {
        const res = await fetch(`${endpoint}/minio/health/live`);
        return res.ok;
      } catch {
        return false;
      }
    },
    { timeoutMs: 60_000, proc },
  );
  return { endpoint, accessKey, secretKey, process: proc };
}
