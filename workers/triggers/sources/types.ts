import type { RetrainOutcome, RetrainRequest } from '../../../workflows/contracts/lifecycle';

/**
 * A trigger source: an HTTP payload some system sends (Alertmanager, a script, …) turned into
 * retrain requests for models' lifecycles. The webhook routes a POST on `path` to it, sends each
 * request as an Update-with-start, and answers with `respond` — the source decides nothing
 * about cooldown, budget or duplicates: the lifecycle does.
 */
export interface TriggerItem {
  /** Fields that identify the item in the answer (index, alert name, fingerprint, …). */
  describe: Record<string, unknown>;
  model?: string;
  request?: RetrainRequest;
  /** Set when the item asks for no retrain: why. */
  skip?: { outcome: 'ignored' | 'rejected'; reason: string };
}

export interface TriggerOutcome {
  item: TriggerItem;
  /** accepted: the lifecycle took the request; ignored/rejected: see the item's skip; failed: Temporal refused or no worker accepted in time. */
  outcome: 'accepted' | 'ignored' | 'rejected' | 'failed';
  workflowId?: string;
  retrain?: RetrainOutcome;
  reason?: string;
}

export interface TriggerSource {
  name: string;
  /** POST path, e.g. `/v1/alertmanager`. */
  path: string;
  /** Validates the body (throwing an HttpError 400 naming the field) and lists what it asks for. */
  parse(body: unknown): TriggerItem[];
  /** The HTTP answer for what became of each item (`body` is the request body parse accepted). */
  respond(outcomes: TriggerOutcome[], body: unknown): { status: number; body: unknown };
}
