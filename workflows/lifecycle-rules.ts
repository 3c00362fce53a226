import { z } from 'zod';
import {
  lifecyclePolicy,
  retrainRequest,
  type LifecycleDecision,
  type LifecycleDecisionKind,
  type LifecycleStatus,
  type NewDataRequest,
  type RetrainOutcome,
  type RetrainTrigger,
} from './contracts/lifecycle';
import type { RetrainDecisionKind } from './contracts/metric-sinks';

/**
 * The lifecycle's rules as a plain class the workflow drives (samples-typescript's
 * `safe-message-handlers` keeps an entity's logic apart the same way): deduplication,
 * coalescing into one follow-up, cooldown and the daily budget, the data window, decisions.
 * It does no I/O and reads no clock: every method that needs the time takes `now`, so the
 * rules are tested without a Temporal server and stay deterministic inside one.
 */

export const MAX_DECISIONS = 100;
export const MAX_PENDING = 50;
export const MAX_DATA_URIS = 64;
export const MAX_SEEN_KEYS = 5000;

export const carriedState = z
  .object({
    policy: lifecyclePolicy,
    production: z.number().int().nullable(),
    pending: z.array(retrainRequest).max(MAX_PENDING),
    pendingDropped: z.number().int().min(0).default(0),
    dataUris: z.array(z.string()).max(MAX_DATA_URIS),
    seen: z.record(z.string(), z.number()),
    trainingsToday: z.object({ day: z.string(), count: z.number().int().min(0) }),
    lastTrainingEndedAt: z.number().optional(),
    decisions: z.array(z.custom<LifecycleDecision>()).max(MAX_DECISIONS),
    counters: z.object({ triggers: z.number(), duplicates: z.number(), coalesced: z.number(), trainings: z.number(), promotions: z.number() }),
    generation: z.number().int().min(1),
  })
  .strict();
export type CarriedState = z.output<typeof carriedState>;

export type Running = NonNullable<LifecycleStatus['running']>;

export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const nextUtcMidnight = (ms: number) => Date.parse(`${utcDay(ms)}T00:00:00.000Z`) + 86_400_000;

/** Told what became of each retrain request (the worker's metrics); never part of the state. */
export type DecisionObserver = (decision: RetrainDecisionKind, source: string) => void;

/** What accepting a trigger did, before the main loop acts on it. */
export type Acceptance = { kind: 'duplicate'; dedupeKey: string } | { kind: 'coalesced'; into: string } | { kind: 'queued'; ticket: number };

export class LifecycleRules {
  running: Running | undefined;
  /** Bumped by anything that can change what the main loop should do next. */
  wake = 0;
  /** Tickets of the triggers waiting in `pending`, in the same order (this run only). */
  private tickets: number[] = [];
  /** What became of each ticket once the main loop took it. */
  private readonly settled = new Map<number, RetrainOutcome>();

  constructor(
    readonly model: string,
    readonly state: CarriedState,
    private readonly log: (line: string) => void = () => undefined,
    private readonly observe: DecisionObserver = () => undefined,
  ) {
    // Triggers carried across continue-as-new have no caller waiting on them.
    this.tickets = state.pending.map(() => -1);
  }

  static initial(model: string, policy: CarriedState['policy'], now: number, log?: (line: string) => void, observe?: DecisionObserver): LifecycleRules {
    return new LifecycleRules(
      model,
      {
        policy,
        production: null,
        pending: [],
        pendingDropped: 0,
        dataUris: [],
        seen: {},
        trainingsToday: { day: utcDay(now), count: 0 },
        decisions: [],
        counters: { triggers: 0, duplicates: 0, coalesced: 0, trainings: 0, promotions: 0 },
        generation: 1,
      },
      log,
      observe,
    );
  }

  decide(now: number, kind: LifecycleDecisionKind, detail: string, extra: Partial<LifecycleDecision> = {}): void {
    const s = this.state;
    s.decisions.push({ at: new Date(now).toISOString(), kind, detail, ...extra });
    if (s.decisions.length > MAX_DECISIONS) s.decisions.splice(0, s.decisions.length - MAX_DECISIONS);
    this.log(`lifecycle ${this.model}: ${kind}: ${detail}`);
  }

  /** True when the key was seen within the dedupe window (then the trigger is dropped). */
  private duplicate(key: string | undefined, now: number): boolean {
    if (!key) return false;
    const s = this.state;
    const horizon = now - s.policy.dedupeWindowSeconds * 1000;
    const at = s.seen[key];
    if (at !== undefined && at >= horizon) return true;
    s.seen[key] = now;
    const keys = Object.keys(s.seen);
    if (keys.length > MAX_SEEN_KEYS) {
      for (const k of keys) if (s.seen[k]! < horizon) delete s.seen[k];
      const left = Object.entries(s.seen).sort((a, b) => a[1] - b[1]);
      for (const [k] of left.slice(0, Math.max(0, left.length - MAX_SEEN_KEYS))) delete s.seen[k];
    }
    return false;
  }

  accept(trigger: RetrainTrigger, now: number): Acceptance {
    const s = this.state;
    s.counters.triggers++;
    if (this.duplicate(trigger.dedupeKey, now)) {
      s.counters.duplicates++;
      const last = s.decisions[s.decisions.length - 1];
      // A burst of duplicates is one decision with a count, not a hundred lines pushing history out.
      if (last?.kind === 'duplicate-dropped' && last.figures?.key === trigger.dedupeKey) {
        last.figures = { ...last.figures, count: Number(last.figures?.count ?? 1) + 1 };
      } else {
        this.decide(now, 'duplicate-dropped', `duplicate trigger ${trigger.dedupeKey} dropped`, { source: trigger.source, figures: { key: trigger.dedupeKey, count: 1 } });
      }
      this.observe('duplicate', trigger.source);
      return { kind: 'duplicate', dedupeKey: trigger.dedupeKey! };
    }
    const running = this.running;
    const joins = Boolean(running || s.pending.length);
    if (joins) {
      s.counters.coalesced++;
      this.decide(now, 'coalesced', `${trigger.source}: ${trigger.reason} — ${running ? `joins the follow-up after ${running.workflowId}` : 'joins the waiting retrain'}`, {
        source: trigger.source,
        figures: trigger.figures,
      });
    } else {
      this.decide(now, 'trigger', `${trigger.source}: ${trigger.reason}`, { source: trigger.source, figures: trigger.figures });
    }
    const ticket = s.counters.triggers;
    if (s.pending.length < MAX_PENDING) {
      s.pending.push(trigger);
      this.tickets.push(ticket);
    } else {
      s.pendingDropped++;
    }
    this.wake++;
    // 'started' is counted when the training starts (countTraining), not predicted here.
    if (joins) this.observe('coalesced', trigger.source);
    else if (this.deferral(now)) this.observe('deferred', trigger.source);
    return running ? { kind: 'coalesced', into: running.workflowId } : { kind: 'queued', ticket };
  }

  /** Adds new data to the window; returns the trigger it makes when the policy retrains on new data. */
  newData(req: NewDataRequest & { uris: string[]; source: RetrainTrigger['source'] }, now: number): RetrainTrigger | undefined {
    const s = this.state;
    if (this.duplicate(req.dedupeKey, now)) {
      s.counters.duplicates++;
      this.decide(now, 'duplicate-dropped', `duplicate newData ${req.dedupeKey} dropped`, { source: req.source });
      return undefined;
    }
    const fresh = req.uris.filter((u) => !s.dataUris.includes(u));
    s.dataUris.push(...fresh);
    if (s.dataUris.length > MAX_DATA_URIS) s.dataUris.splice(0, s.dataUris.length - MAX_DATA_URIS);
    this.decide(now, 'new-data', `${fresh.length} new data object(s): ${fresh.slice(0, 3).join(', ')}${fresh.length > 3 ? ', …' : ''}`, { source: req.source });
    if (fresh.length && s.policy.retrainOnNewData) return { reason: `new data: ${fresh.length} object(s)`, source: req.source, figures: { uris: fresh.slice(0, 10) } };
    return undefined;
  }

  /** A request refused (bad input, or no training could be built for it). */
  rejected(source: string | undefined): void {
    this.observe('rejected', source ?? 'unknown');
  }

  budgetLeft(now: number): boolean {
    const s = this.state;
    return s.trainingsToday.day !== utcDay(now) || s.trainingsToday.count < s.policy.dailyBudget;
  }

  /** When the next training may start, or undefined if it may start now (∞: the budget is 0). */
  nextEligibleAt(now: number): number | undefined {
    const s = this.state;
    let at = now;
    if (s.lastTrainingEndedAt !== undefined) at = Math.max(at, s.lastTrainingEndedAt + s.policy.cooldownSeconds * 1000);
    if (!this.budgetLeft(at)) at = s.policy.dailyBudget === 0 ? Number.POSITIVE_INFINITY : nextUtcMidnight(at);
    return at > now ? at : undefined;
  }

  /** Why pending triggers wait now, and until when; undefined when they may start. */
  deferral(now: number): { until: number; reason: 'cooldown' | 'budget' } | undefined {
    const at = this.nextEligibleAt(now);
    if (at === undefined) return undefined;
    return { until: at, reason: this.budgetLeft(now) && this.budgetLeft(at - 1) ? 'cooldown' : 'budget' };
  }

  /** Takes every pending trigger for one training, counting it against the budget. */
  startCycle(): { triggers: RetrainTrigger[]; tickets: number[] } {
    const s = this.state;
    const triggers = s.pending.splice(0);
    const tickets = this.tickets.splice(0);
    s.pendingDropped = 0;
    return { triggers, tickets };
  }

  /** A training starts now, for the triggers of one cycle (`source`: the first one's). */
  countTraining(now: number, source?: string): void {
    this.observe('started', source ?? 'unknown');
    const s = this.state;
    if (s.trainingsToday.day !== utcDay(now)) s.trainingsToday = { day: utcDay(now), count: 0 };
    s.trainingsToday.count++;
    s.counters.trainings++;
  }

  /** Answers the callers waiting on these tickets. */
  settle(tickets: number[], outcome: RetrainOutcome): void {
    for (const t of tickets) if (t >= 0) this.settled.set(t, outcome);
  }

  outcomeOf(ticket: number): RetrainOutcome | undefined {
    return this.settled.get(ticket);
  }

  /** Forgets an answer once its caller has it. */
  forget(ticket: number): void {
    this.settled.delete(ticket);
  }

  status(now: number): LifecycleStatus {
    const s = this.state;
    const eligibleAt = s.pending.length ? this.nextEligibleAt(now) : undefined;
    const running = this.running;
    return {
      model: this.model,
      phase: running ? (running.kind === 'training' ? 'training' : 'promoting') : eligibleAt === undefined ? 'idle' : this.budgetLeft(now) ? 'cooldown' : 'over-budget',
      policy: s.policy,
      production: s.production,
      running,
      pending: s.pending,
      dataUris: s.dataUris,
      trainingsToday: s.trainingsToday,
      lastTrainingEndedAt: s.lastTrainingEndedAt === undefined ? undefined : new Date(s.lastTrainingEndedAt).toISOString(),
      nextEligibleAt: eligibleAt === undefined ? undefined : new Date(eligibleAt).toISOString(),
      decisions: s.decisions,
      counters: s.counters,
      generation: s.generation,
    };
  }
}
