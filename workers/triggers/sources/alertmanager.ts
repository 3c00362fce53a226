import { createHash } from 'node:crypto';
import { z } from 'zod';
import { modelName, retrainRequest, type RetrainOutcome, type RetrainRequest } from '../../../workflows/contracts/lifecycle';
import { parseJsonBody } from '../../../infra/http';
import type { TriggerItem, TriggerSource } from './types';

/**
 * Prometheus Alertmanager (webhook_config, payload version 4): each firing alert with a `model`
 * label becomes a retrain request whose dedupe key is the alert's fingerprint and start time, so
 * a redelivered group is harmless. Resolved alerts are reported, not sent.
 */

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

export interface AlertOutcome {
  index: number;
  alertname?: string;
  fingerprint?: string;
  status: 'firing' | 'resolved';
  model?: string;
  /** accepted: the lifecycle took the retrain request; ignored: a resolved alert; rejected: no usable model; failed: Temporal refused or no worker accepted it in time (Alertmanager will retry). */
  outcome: 'accepted' | 'ignored' | 'rejected' | 'failed';
  workflowId?: string;
  /** The lifecycle's answer to an accepted request (absent when it did not answer in time). */
  retrain?: RetrainOutcome;
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


export const alertmanager: TriggerSource = {
  name: 'alertmanager',
  path: '/v1/alertmanager',
  parse(body) {
    const payload = parseJsonBody(alertmanagerPayload, body, 'Alertmanager payload');
    return payload.alerts.map((a, index): TriggerItem => {
      const describe = { index, status: a.status, ...(a.labels.alertname ? { alertname: a.labels.alertname } : {}), fingerprint: fingerprintOf(a) };
      if (a.status === 'resolved') return { describe, skip: { outcome: 'ignored', reason: 'resolved alerts do not trigger a retrain' } };
      const named = a.labels.model ?? payload.commonLabels.model;
      const model = modelName.safeParse(named);
      if (!model.success) {
        return { describe, skip: { outcome: 'rejected', reason: named === undefined ? 'no `model` label on the alert or in commonLabels' : `label model=${JSON.stringify(clip(named, 80))}: ${model.error.issues[0]!.message}` } };
      }
      const request = retrainFromAlert(a, payload);
      const checked = retrainRequest.safeParse(request);
      if (!checked.success) return { describe: { ...describe, model: model.data }, skip: { outcome: 'rejected', reason: checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') } };
      return { describe, model: model.data, request };
    });
  },
  respond(outcomes, body) {
    const alerts: AlertOutcome[] = outcomes.map((o) => ({
      ...(o.item.describe as Pick<AlertOutcome, 'index' | 'status' | 'alertname' | 'fingerprint'>),
      ...(o.item.model ? { model: o.item.model } : {}),
      outcome: o.outcome,
      ...(o.workflowId ? { workflowId: o.workflowId } : {}),
      ...(o.outcome === 'accepted' && o.item.request?.dedupeKey ? { dedupeKey: o.item.request.dedupeKey } : {}),
      ...(o.retrain ? { retrain: o.retrain } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
    }));
    const count = (k: AlertOutcome['outcome']) => alerts.filter((x) => x.outcome === k).length;
    const summary = { receiver: (body as { receiver?: string }).receiver, accepted: count('accepted'), ignored: count('ignored'), rejected: count('rejected'), failed: count('failed'), alerts };
    // 5xx makes Alertmanager send the group again; the dedupe keys make the repeat harmless.
    return { status: summary.failed ? 503 : 200, body: summary };
  },
};
