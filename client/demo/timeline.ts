import type { Client } from '@temporalio/client';
import type { Kysely } from 'kysely';
import type { Database } from '../../infra/db/schema';
import { STATUS_QUERY, lifecycleWorkflowId } from '../../workflows/contracts/names';
import { monthLabel } from './data';
import { fmt, lifecycleStatusSchema, summarizeReport, type Decision, type LifecycleView, type ReportSummary } from './figures';

/**
 * The demo's story as it happens: its own steps (months, data arriving, labels), the lifecycle's
 * decisions (query `status`) and monitoring's reports (monitoring_reports), printed as one
 * timeline and kept for the report.
 */

export interface TimelineEvent {
  /** ms since epoch. */
  at: number;
  /** Seconds since the demo started. */
  t: number;
  /** The month being replayed then (null before the replay starts). */
  month: string | null;
  kind: string;
  source?: string;
  version?: number;
  auc?: number;
  psi?: number;
  detail: string;
}

export class Timeline {
  readonly events: TimelineEvent[] = [];
  month: string | null = null;

  constructor(
    readonly startedAt: number,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  add(e: Omit<TimelineEvent, 't' | 'month' | 'at'> & { at?: number }): TimelineEvent {
    const at = e.at ?? Date.now();
    const event: TimelineEvent = { ...e, at, t: Math.round((at - this.startedAt) / 100) / 10, month: this.month };
    this.events.push(event);
    const mm = Math.floor(event.t / 60);
    const ss = Math.floor(event.t % 60);
    const when = `${String(mm).padStart(2, '0')}:${String(ss).padStart(2, '0')}`;
    const month = event.month ? monthLabel(event.month) : '—';
    const v = event.version !== undefined ? `v${event.version}` : '';
    const figs = [event.auc !== undefined ? `AUC ${fmt(event.auc)}` : '', event.psi !== undefined ? `PSI ${fmt(event.psi)}` : ''].filter(Boolean).join(' ');
    this.out.write(`  ${when}  ${month.padEnd(3)}  ${event.kind.padEnd(20)} ${v.padEnd(4)} ${event.source ? `[${event.source}] ` : ''}${event.detail}${figs ? `  (${figs})` : ''}\n`);
    return event;
  }
}

function num(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) ? x : undefined;
}

function decisionFigures(d: Decision): { auc?: number; psi?: number } {
  const f = d.figures ?? {};
  const metrics = (typeof f.metrics === 'object' && f.metrics ? (f.metrics as Record<string, unknown>) : {}) as Record<string, unknown>;
  return { auc: num(f.auc) ?? num(metrics.auc), psi: num(f.maxPsi) ?? num(f.psi) };
}

/** Polls the lifecycle and the monitoring reports once a second, adding what is new to the timeline. */
export class Watcher {
  readonly reports: ReportSummary[] = [];
  latest?: LifecycleView;
  /** When each version became production, as the lifecycle reported it. */
  readonly productionSince = new Map<number, number>();
  private production: number | null = null;
  private seenDecisions = new Set<string>();
  private seenReports = new Set<string>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  lastError?: string;

  constructor(
    private readonly opts: { client: Client; db: Kysely<Database>; model: string; timeline: Timeline; minRows: number },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
    await this.poll();
  }

  async poll(): Promise<void> {
    await Promise.all([this.pollLifecycle(), this.pollReports()]);
  }

  private async pollLifecycle(): Promise<void> {
    let raw: unknown;
    try {
      raw = await this.opts.client.workflow.getHandle(lifecycleWorkflowId(this.opts.model)).query(STATUS_QUERY);
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      return;
    }
    const parsed = lifecycleStatusSchema.safeParse(raw);
    if (!parsed.success) {
      this.lastError = `lifecycle status: ${parsed.error.message}`;
      return;
    }
    this.latest = parsed.data;
    for (const d of parsed.data.decisions) {
      const key = `${d.at}|${d.kind}|${d.detail}|${d.version ?? ''}`;
      if (this.seenDecisions.has(key)) continue;
      this.seenDecisions.add(key);
      const at = Date.parse(d.at);
      this.opts.timeline.add({ at: Number.isFinite(at) ? at : undefined, kind: d.kind, source: d.source, version: d.version, detail: d.detail, ...decisionFigures(d) });
    }
    const prod = parsed.data.production;
    if (prod !== null && prod !== this.production) {
      this.production = prod;
      this.productionSince.set(prod, Date.now());
      this.opts.timeline.add({ kind: 'production', version: prod, detail: `v${prod} is the production version` });
    }
  }

  private async pollReports(): Promise<void> {
    let rows;
    try {
      rows = await this.opts.db
        .selectFrom('monitoring_reports')
        .innerJoin('models', 'models.id', 'monitoring_reports.model_id')
        .leftJoin('model_versions', 'model_versions.id', 'monitoring_reports.model_version_id')
        .select(['monitoring_reports.id', 'monitoring_reports.figures', 'monitoring_reports.created_at', 'model_versions.version'])
        .where('models.name', '=', this.opts.model)
        .orderBy('monitoring_reports.created_at')
        .execute();
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      return;
    }
    for (const r of rows) {
      if (this.seenReports.has(String(r.id))) continue;
      this.seenReports.add(String(r.id));
      const s = summarizeReport(r.figures, new Date(r.created_at).getTime(), r.version ?? null);
      if (!s) continue;
      this.reports.push(s);
      // A window still growing towards minRows is no news; it stays in the report's data.
      if (s.level === 'insufficient-data') continue;
      const drift =
        s.rows >= this.opts.minRows && s.maxPsi !== null
          ? `${s.rows} rows: max PSI ${fmt(s.maxPsi)} (${s.maxPsiFeature}), prediction PSI ${fmt(s.predictionPsi)}`
          : `${s.rows} rows (drift not judged below ${this.opts.minRows})`;
      const perf = s.labeledRows > 0 && s.auc !== null ? `; ${s.labeledRows} labelled: AUC ${fmt(s.auc)} (offline ${fmt(s.offlineAuc)}), log loss ${fmt(s.logLoss)} (offline ${fmt(s.offlineLogLoss)}), calibration gap ${fmt(s.calibrationGap)}` : '';
      this.opts.timeline.add({
        at: s.at,
        kind: s.breach ? 'monitoring BREACH' : `monitoring ${s.level}`,
        version: s.version ?? undefined,
        auc: s.auc ?? undefined,
        psi: s.rows >= this.opts.minRows ? (s.maxPsi ?? undefined) : undefined,
        detail: `${drift}${perf}${s.breach && s.reasons.length ? ` → ${s.reasons.join('; ')}` : ''}`,
      });
    }
  }
}
