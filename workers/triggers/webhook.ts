import http from 'node:http';
import type { Client } from '@temporalio/client';
import { NoLifecycleError, requestRetrain } from '../../client/lifecycle';
import { lifecycleWorkflowId } from '../../workflows/contracts/names';
import type { RetrainRequest } from '../../workflows/contracts/lifecycle';
import { ConfigError } from '../../infra/errors';
import { HttpError, bearerToken, listen, readJsonBody, send, tokenMatches } from '../../infra/http';
import type { Logger } from '../../infra/log';
import { METRICS_CONTENT_TYPE, MetricsRegistry } from '../../infra/metrics';
import { TRIGGER_SOURCES, type TriggerOutcome, type TriggerSource } from './sources';

/**
 * The HTTP trigger: Prometheus Alertmanager (webhook_config, payload version 4) and plain
 * scripts turn into retrain requests to `model/<name>` by Update-with-start, and the answer
 * says what the lifecycle did (started, duplicate, coalesced, deferred). The webhook
 * decides nothing itself — cooldown, budget, dedupe and coalescing are the lifecycle
 * workflow's — so a redelivered alert is harmless: its dedupe key is the alert's fingerprint
 * and start time.
 */

export const MIN_TOKEN_LENGTH = 16;

export interface WebhookOptions {
  client: Client;
  /** Required: callers send `Authorization: Bearer <token>`. */
  token: string;
  log: Logger;
  port?: number;
  host?: string;
  maxBodyBytes?: number;
  /** The lifecycle's task queue (the plugin's control queue); default `mlops-control`. */
  taskQueue?: string;
  /** How long one alert waits for the lifecycle's answer (default 10 s); past it the request still stands, unanswered. */
  answerTimeoutMs?: number;
}

export interface RunningWebhook {
  url: string;
  port: number;
  close(): Promise<void>;
}

export { alertmanagerPayload, retrainFromAlert, type AlertOutcome, type AlertmanagerPayload } from './sources/alertmanager';
export { retrainBody } from './sources/retrain';

export async function startWebhookServer(opts: WebhookOptions): Promise<RunningWebhook> {
  if (!opts.token) throw new ConfigError('MLOPS_WEBHOOK_TOKEN is not set: the webhook refuses to start without a token (callers send it as "Authorization: Bearer <token>")');
  if (opts.token.length < MIN_TOKEN_LENGTH) throw new ConfigError(`MLOPS_WEBHOOK_TOKEN: must be at least ${MIN_TOKEN_LENGTH} characters`);
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const log = opts.log;

  const authorize = (req: http.IncomingMessage) => {
    const given = bearerToken(req);
    if (!tokenMatches(given, opts.token)) throw new HttpError(given ? 'wrong bearer token' : 'missing bearer token (Authorization: Bearer <MLOPS_WEBHOOK_TOKEN>)', 401, { 'www-authenticate': 'Bearer' });
  };

  // Alerts by source and outcome, and the lifecycle's answers: a refused alert shows here and in
  // the log, not only as a "rejected" count in the response body Alertmanager ignores.
  const metrics = new MetricsRegistry();
  const items = metrics.counter('mlops_webhook_items_total', 'Trigger items received (alerts, retrain requests), by source and outcome (accepted, ignored, rejected, failed).', ['source', 'outcome']);
  const answers = metrics.counter('mlops_retrain_decisions_total', 'What the lifecycle answered to a retrain the webhook sent, by outcome (started, coalesced, duplicate, deferred, rejected, unanswered).', ['outcome']);
  const requestsTotal = metrics.counter('mlops_webhook_requests_total', 'HTTP requests to the webhook, by path and status code.', ['path', 'code']);

  const ask = (model: string, request: RetrainRequest) => requestRetrain(opts.client, model, request, { taskQueue: opts.taskQueue, timeoutMs: opts.answerTimeoutMs ?? 10_000 });

  /** One source's payload: each item it asks for goes to its model's lifecycle, in order. */
  const run = async (source: TriggerSource, body: unknown) => {
    const outcomes: TriggerOutcome[] = [];
    for (const item of source.parse(body)) {
      if (item.skip || !item.model || !item.request) {
        const outcome = item.skip?.outcome ?? 'rejected';
        const reason = item.skip?.reason ?? 'no model or request';
        outcomes.push({ item, outcome, reason });
        items.inc({ source: source.name, outcome });
        if (outcome === 'rejected') log.warn(`${source.name}: ${JSON.stringify(item.describe)} rejected: ${reason}`);
        continue;
      }
      try {
        const { workflowId, answer } = await ask(item.model, item.request);
        outcomes.push({ item, outcome: 'accepted', workflowId, ...(answer ? { retrain: answer } : {}) });
        items.inc({ source: source.name, outcome: 'accepted' });
        answers.inc({ outcome: answer?.outcome ?? 'unanswered' });
        log.info(`${source.name}: ${JSON.stringify(item.describe)} → retrain ${workflowId}: ${answer?.outcome ?? 'no answer yet'}`);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (err instanceof NoLifecycleError) {
          // Not Temporal's fault: a resend would not help, so no 5xx.
          outcomes.push({ item, outcome: 'rejected', reason });
          items.inc({ source: source.name, outcome: 'rejected' });
          log.warn(`${source.name}: ${JSON.stringify(item.describe)} rejected: ${reason}`);
          continue;
        }
        outcomes.push({ item, outcome: 'failed', workflowId: lifecycleWorkflowId(item.model), reason });
        items.inc({ source: source.name, outcome: 'failed' });
        log.error(`${source.name}: retrain request to ${lifecycleWorkflowId(item.model)} failed: ${reason}`);
      }
    }
    return source.respond(outcomes, body);
  };

  const routes: Record<string, { method: string; auth: boolean; run: (req: http.IncomingMessage) => Promise<{ status: number; body: unknown; contentType?: string }> }> = {
    '/healthz': { method: 'GET', auth: false, run: async () => ({ status: 200, body: { status: 'ok' } }) },
    // Counts only, no model data: open like the model server's /metrics.
    '/metrics': { method: 'GET', auth: false, run: async () => ({ status: 200, body: await metrics.render(), contentType: METRICS_CONTENT_TYPE }) },
    ...Object.fromEntries(TRIGGER_SOURCES.map((source) => [source.path, { method: 'POST', auth: true, run: async (req: http.IncomingMessage) => run(source, await readJsonBody(req, maxBody)) }])),
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://webhook');
    const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname]! : undefined;
    if (!route) throw new HttpError(`no route for ${req.method} ${url.pathname}`, 404);
    if (req.method !== route.method) throw new HttpError(`${url.pathname} takes ${route.method}, not ${req.method}`, 405, { allow: route.method });
    if (route.auth) authorize(req);
    const out = await route.run(req);
    if (out.contentType) {
      res.writeHead(out.status, { 'content-type': out.contentType });
      res.end(out.body as string);
    } else send(res, out.status, out.body);
  };

  const server = http.createServer((req, res) => {
    // Only known paths become label values: a scanner must not grow the series without bound.
    const path = new URL(req.url ?? '/', 'http://webhook').pathname;
    res.once('finish', () => requestsTotal.inc({ path: Object.hasOwn(routes, path) ? path : 'other', code: res.statusCode }));
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        // A refused body may still be arriving: answer, then close instead of reading it.
        const close = err.status === 413 || err.status === 401;
        if (!res.headersSent) send(res, err.status, { error: err.message }, { ...err.headers, ...(close ? { connection: 'close' } : {}) });
        if (err.status === 413) req.destroy();
        if (err.status >= 500) log.error(`webhook: ${req.method} ${req.url}: ${err.message}`);
        return;
      }
      log.error(`webhook: ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (!res.headersSent) send(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  const url = await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');
  const port = Number(new URL(url).port);
  log.info(`webhook listening on ${url} (${TRIGGER_SOURCES.map((t) => `POST ${t.path}`).join(', ')}, GET /healthz, GET /metrics)`);
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
