import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { signalLifecycle } from '../../client/lifecycle';
import { lifecycleWorkflowId } from '../../workflows/definitions';
import { modelName, retrainRequest, type RetrainRequest } from '../../workflows/lifecycle-api';
import { ConfigError } from '../errors';
import { HttpError, bearerToken, parseJsonBody, readJsonBody, send, tokenMatches } from '../http';
import type { Logger } from '../log';

/**
 * The HTTP trigger: Prometheus Alertmanager (webhook_config, payload version 4) and plain
 * scripts turn into `retrain` signals to `model/<name>` by signal-with-start. The webhook
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
}

export interface RunningWebhook {
  url: string;
  port: number;
  close(): Promise<void>;
}

const labelMap = z.record(z.string().max(1024), z.string().max(64 * 1024));

const alert = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels: labelMap,
  annotations: labelMap.default({}),
  startsAt: z.string().min(1).max(64),
  endsAt: z.string().max(64).optional(),
  generatorURL: z.string().max(8192).optional(),
  fingerprint: z.string().min(1).max(128).optional(),
});
type Alert = z.output<typeof alert>;

/** Alertmanager's webhook payload; fields we do not use are let through, so newer Alertmanagers keep working. */
export const alertmanagerPayload = z.looseObject({
  version: z.literal('4', { message: 'must be "4" (Alertmanager webhook payload version 4)' }),
  receiver: z.string().max(1024).optional(),
  status: z.enum(['firing', 'resolved']).optional(),
  alerts: z.array(alert).max(1000),
  groupLabels: labelMap.default({}),
  commonLabels: labelMap.default({}),
  commonAnnotations: labelMap.default({}),
  externalURL: z.string().max(8192).optional(),
  groupKey: z.string().max(8192).optional(),
  truncatedAlerts: z.number().int().min(0).optional(),
});
export type AlertmanagerPayload = z.input<typeof alertmanagerPayload>;

export const retrainBody = z
  .object({
    model: modelName,
    reason: z.string().min(1).max(500).optional(),
    dedupeKey: z.string().min(1).max(200).optional(),
    figures: z.record(z.string().max(128), z.unknown()).optional(),
  })
  .strict();

export interface AlertOutcome {
  index: number;
  alertname?: string;
  fingerprint?: string;
  status: 'firing' | 'resolved';
  model?: string;
  /** signalled: the lifecycle got a `retrain`; ignored: a resolved alert; rejected: no usable model; failed: Temporal refused (Alertmanager will retry). */
  outcome: 'signalled' | 'ignored' | 'rejected' | 'failed';
  workflowId?: string;
  dedupeKey?: string;
  reason?: string;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** At most 24 entries of at most 200 characters: figures describe the alert, they do not carry it. */
function smallMap(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(m)
      .slice(0, 24)
      .map(([k, v]) => [clip(k, 64), clip(v, 200)]),
  );
}

function fingerprintOf(a: Alert): string {
  if (a.fingerprint) return clip(a.fingerprint, 64);
  // Alertmanager always sends one; for other senders, the label set names the alert the same way.
  const labels = Object.entries(a.labels).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(labels)).digest('hex').slice(0, 16);
}

/** The retrain signal one firing alert becomes. */
export function retrainFromAlert(a: Alert, payload: z.output<typeof alertmanagerPayload>): RetrainRequest {
  const alertname = a.labels.alertname ?? payload.commonLabels.alertname;
  const summary = a.annotations.summary ?? a.annotations.description ?? payload.commonAnnotations.summary;
  const figures: Record<string, unknown> = {
    ...(alertname ? { alertname } : {}),
    startsAt: a.startsAt,
    fingerprint: fingerprintOf(a),
    labels: smallMap(a.labels),
    annotations: smallMap(a.annotations),
    ...(a.generatorURL ? { generatorURL: clip(a.generatorURL, 500) } : {}),
    ...(payload.receiver ? { receiver: clip(payload.receiver, 200) } : {}),
  };
  if (JSON.stringify(figures).length > 15 * 1024) delete figures.annotations;
  return {
    reason: clip(summary ? `${alertname ?? 'alert'}: ${summary}` : `alert ${alertname ?? '(no alertname)'} is firing`, 500),
    source: 'webhook',
    dedupeKey: clip(`alertmanager:${fingerprintOf(a)}:${a.startsAt}`, 200),
    figures,
  };
}

export async function startWebhookServer(opts: WebhookOptions): Promise<RunningWebhook> {
  if (!opts.token) throw new ConfigError('MLOPS_WEBHOOK_TOKEN is not set: the webhook refuses to start without a token (callers send it as "Authorization: Bearer <token>")');
  if (opts.token.length < MIN_TOKEN_LENGTH) throw new ConfigError(`MLOPS_WEBHOOK_TOKEN: must be at least ${MIN_TOKEN_LENGTH} characters`);
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const log = opts.log;

  const authorize = (req: http.IncomingMessage) => {
    const given = bearerToken(req);
    if (!tokenMatches(given, opts.token)) throw new HttpError(given ? 'wrong bearer token' : 'missing bearer token (Authorization: Bearer <MLOPS_WEBHOOK_TOKEN>)', 401, { 'www-authenticate': 'Bearer' });
  };

  const signal = async (model: string, request: RetrainRequest): Promise<string> => {
    const handle = await signalLifecycle(opts.client, model, 'retrain', request);
    return handle.workflowId;
  };

  const alertmanager = async (body: unknown) => {
    const payload = parseJsonBody(alertmanagerPayload, body, 'Alertmanager payload');
    const outcomes: AlertOutcome[] = [];
    for (const [index, a] of payload.alerts.entries()) {
      const base = { index, status: a.status, ...(a.labels.alertname ? { alertname: a.labels.alertname } : {}), fingerprint: fingerprintOf(a) };
      if (a.status === 'resolved') {
        outcomes.push({ ...base, outcome: 'ignored', reason: 'resolved alerts do not trigger a retrain' });
        continue;
      }
      const named = a.labels.model ?? payload.commonLabels.model;
      const model = modelName.safeParse(named);
      if (!model.success) {
        outcomes.push({ ...base, outcome: 'rejected', reason: named === undefined ? 'no `model` label on the alert or in commonLabels' : `label model=${JSON.stringify(clip(named, 80))}: ${model.error.issues[0]!.message}` });
        continue;
      }
      const request = retrainFromAlert(a, payload);
      const checked = retrainRequest.safeParse(request);
      if (!checked.success) {
        outcomes.push({ ...base, model: model.data, outcome: 'rejected', reason: checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
        continue;
      }
      try {
        const workflowId = await signal(model.data, request);
        outcomes.push({ ...base, model: model.data, outcome: 'signalled', workflowId, dedupeKey: request.dedupeKey });
        log.info(`alert ${base.alertname ?? '?'} (${base.fingerprint}) → retrain ${workflowId}`);
      } catch (err) {
        outcomes.push({ ...base, model: model.data, outcome: 'failed', workflowId: lifecycleWorkflowId(model.data), reason: err instanceof Error ? err.message : String(err) });
        log.error(`alert ${base.alertname ?? '?'}: signalling ${lifecycleWorkflowId(model.data)} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const count = (o: AlertOutcome['outcome']) => outcomes.filter((x) => x.outcome === o).length;
    const summary = { receiver: payload.receiver, signalled: count('signalled'), ignored: count('ignored'), rejected: count('rejected'), failed: count('failed'), alerts: outcomes };
    // 5xx makes Alertmanager send the group again; the dedupe keys make the repeat harmless.
    return { status: summary.failed ? 503 : 200, body: summary };
  };

  const retrain = async (body: unknown) => {
    const b = parseJsonBody(retrainBody, body, 'retrain request');
    const request = parseJsonBody(retrainRequest, { reason: b.reason ?? 'retrain requested by webhook', source: 'webhook', ...(b.dedupeKey ? { dedupeKey: b.dedupeKey } : {}), ...(b.figures ? { figures: b.figures } : {}) }, 'retrain request');
    try {
      const workflowId = await signal(b.model, request);
      log.info(`retrain ${b.model} → ${workflowId}`);
      return { status: 200, body: { model: b.model, outcome: 'signalled', workflowId, ...(request.dedupeKey ? { dedupeKey: request.dedupeKey } : {}) } };
    } catch (err) {
      throw new HttpError(`signalling ${lifecycleWorkflowId(b.model)} failed: ${err instanceof Error ? err.message : String(err)}`, 503);
    }
  };

  const routes: Record<string, { method: string; auth: boolean; run: (req: http.IncomingMessage) => Promise<{ status: number; body: unknown }> }> = {
    '/healthz': { method: 'GET', auth: false, run: async () => ({ status: 200, body: { status: 'ok' } }) },
    '/v1/alertmanager': { method: 'POST', auth: true, run: async (req) => alertmanager(await readJsonBody(req, maxBody)) },
    '/v1/retrain': { method: 'POST', auth: true, run: async (req) => retrain(await readJsonBody(req, maxBody)) },
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://webhook');
    const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname]! : undefined;
    if (!route) throw new HttpError(`no route for ${req.method} ${url.pathname}`, 404);
    if (req.method !== route.method) throw new HttpError(`${url.pathname} takes ${route.method}, not ${req.method}`, 405, { allow: route.method });
    if (route.auth) authorize(req);
    const out = await route.run(req);
    send(res, out.status, out.body);
  };

  const server = http.createServer((req, res) => {
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  log.info(`webhook listening on ${url} (POST /v1/alertmanager, POST /v1/retrain, GET /healthz)`);
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
