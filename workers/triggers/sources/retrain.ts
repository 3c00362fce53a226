import { z } from 'zod';
import { modelName, retrainRequest } from '../../../workflows/contracts/lifecycle';
import { HttpError, parseJsonBody } from '../../../infra/http';
import type { TriggerSource } from './types';

/** Plain JSON from a script or another system: `{ model, reason?, dedupeKey?, figures? }`. */

export const retrainBody = z
  .object({
    model: modelName,
    reason: z.string().min(1).max(500).optional(),
    dedupeKey: z.string().min(1).max(200).optional(),
    figures: z.record(z.string().max(128), z.unknown()).optional(),
  })
  .strict();

export const plainRetrain: TriggerSource = {
  name: 'retrain',
  path: '/v1/retrain',
  parse(body) {
    const b = parseJsonBody(retrainBody, body, 'retrain request');
    const request = parseJsonBody(
      retrainRequest,
      { reason: b.reason ?? 'retrain requested by webhook', source: 'webhook', ...(b.dedupeKey ? { dedupeKey: b.dedupeKey } : {}), ...(b.figures ? { figures: b.figures } : {}) },
      'retrain request',
    );
    return [{ describe: {}, model: b.model, request }];
  },
  respond([o]) {
    if (!o || o.outcome === 'failed') throw new HttpError(`retrain request to model/${o?.item.model ?? '?'} failed: ${o?.reason ?? 'no outcome'}`, 503);
    if (o.outcome === 'rejected') throw new HttpError(o.reason ?? 'rejected', 404);
    return {
      status: 200,
      body: { model: o.item.model, outcome: o.outcome, workflowId: o.workflowId, ...(o.item.request?.dedupeKey ? { dedupeKey: o.item.request.dedupeKey } : {}), ...(o.retrain ? { retrain: o.retrain } : {}) },
    };
  },
};
