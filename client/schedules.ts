import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleSummary } from '@temporalio/client';
import { UserFacingError, describeError } from '../infra/errors';
import { SCHEDULED_RETRAIN } from '../workflows/contracts/names';
import { DEFAULT_TASK_QUEUES } from '../workflows/contracts/task-queues';
import type { LifecyclePolicyInput } from '../workflows/contracts/lifecycle';

/**
 * Retraining on a timetable: a Temporal Schedule whose action starts `scheduledRetrain`, which
 * only signals the model's lifecycle workflow. The lifecycle, not the schedule, decides whether
 * a training starts (cooldown, budget, dedupe), so a schedule never races a drift trigger.
 */

export interface ScheduleRequest {
  model: string;
  scheduleId?: string;
  cron?: string;
  /** Interval in seconds. */
  everySeconds?: number;
  reason?: string;
  policy?: LifecyclePolicyInput;
  paused?: boolean;
}

/** What list/describe show; memo keeps the spec as typed, since Temporal compiles cron to calendars. */
export interface ScheduleView {
  scheduleId: string;
  model?: string;
  workflowType?: string;
  spec?: string;
  paused: boolean;
  note?: string;
  nextActionTimes: string[];
  recentActions: Array<{ scheduledAt: string; takenAt: string; workflowId: string }>;
  numActionsTaken?: number;
  numActionsSkippedOverlap?: number;
  createdAt?: string;
}

export function defaultScheduleId(model: string): string {
  return `retrain-${model}`;
}

const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

export async function createRetrainSchedule(client: Client, req: ScheduleRequest, taskQueue: string = DEFAULT_TASK_QUEUES.control): Promise<ScheduleView> {
  if ((req.cron === undefined) === (req.everySeconds === undefined)) throw new UserFacingError('schedule create: give --cron <expr> or --every <duration> (one of them)');
  const scheduleId = req.scheduleId ?? defaultScheduleId(req.model);
  if (!SCHEDULE_ID.test(scheduleId)) throw new UserFacingError(`--schedule-id: must be letters, digits and . _ / - (got ${JSON.stringify(scheduleId)})`);
  const specText = req.cron !== undefined ? `cron ${req.cron}` : `every ${req.everySeconds}s`;
  try {
    await client.schedule.create({
      scheduleId,
      spec: req.cron !== undefined ? { cronExpressions: [req.cron] } : { intervals: [{ every: req.everySeconds! * 1000 }] },
      action: {
        type: 'startWorkflow',
        workflowType: SCHEDULED_RETRAIN,
        taskQueue,
        // Temporal appends the scheduled time to this id, so each run has its own.
        workflowId: `scheduled-retrain/${req.model}`,
        args: [{ model: req.model, ...(req.reason ? { reason: req.reason } : {}), ...(req.policy ? { policy: req.policy } : {}) }],
      },
      // A run still going when the next is due means the lifecycle is slow to answer; piling up more would not help.
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      memo: { mlops: 'retrain-schedule', model: req.model, spec: specText },
      state: { paused: req.paused ?? false, note: `created by mlops schedule create (${specText})` },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) throw new UserFacingError(`schedule ${scheduleId} already exists (mlops schedule delete --schedule-id ${scheduleId} first, or pick another --schedule-id)`);
    // The server checks cron syntax; its INVALID_ARGUMENT is the user's to fix.
    if ((err as { code?: number }).code === 3) throw new UserFacingError(`schedule create: ${describeError(err)}`);
    throw err;
  }
  return describeSchedule(client, scheduleId);
}

function summaryView(s: ScheduleSummary | ScheduleDescription): ScheduleView {
  const memo = (s.memo ?? {}) as { model?: string; spec?: string };
  const spec = memo.spec ?? describeSpec(s.spec);
  return {
    scheduleId: s.scheduleId,
    model: memo.model,
    workflowType: s.action?.workflowType,
    spec,
    paused: s.state.paused,
    note: s.state.note,
    nextActionTimes: s.info.nextActionTimes.map((d) => d.toISOString()),
    recentActions: s.info.recentActions.map((a) => ({ scheduledAt: a.scheduledAt.toISOString(), takenAt: a.takenAt.toISOString(), workflowId: a.action.workflow.workflowId })),
  };
}

function describeSpec(spec: ScheduleSummary['spec']): string | undefined {
  if (!spec) return undefined;
  const parts: string[] = [];
  for (const i of spec.intervals ?? []) parts.push(`every ${Math.round(i.every / 1000)}s`);
  if (spec.calendars?.length) parts.push(`${spec.calendars.length} calendar spec(s)`);
  return parts.join(', ') || undefined;
}

export async function describeSchedule(client: Client, scheduleId: string): Promise<ScheduleView> {
  try {
    const d = await client.schedule.getHandle(scheduleId).describe();
    return {
      ...summaryView(d),
      numActionsTaken: d.info.numActionsTaken,
      numActionsSkippedOverlap: d.info.numActionsSkippedOverlap,
      createdAt: d.info.createdAt.toISOString(),
    };
  } catch (err) {
    throw notFound(err, scheduleId);
  }
}

/** Every schedule in the namespace; `all: false` keeps those that start scheduledRetrain. */
export async function listSchedules(client: Client, opts: { all?: boolean } = {}): Promise<ScheduleView[]> {
  const out: ScheduleView[] = [];
  for await (const s of client.schedule.list()) {
    if (opts.all || s.action?.workflowType === SCHEDULED_RETRAIN) out.push(summaryView(s));
  }
  return out.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
}

export async function deleteSchedule(client: Client, scheduleId: string): Promise<void> {
  try {
    await client.schedule.getHandle(scheduleId).delete();
  } catch (err) {
    throw notFound(err, scheduleId);
  }
}

/** Runs the action now, even if a scheduled run is in progress: it only signals, and the lifecycle dedupes and coalesces. */
export async function triggerSchedule(client: Client, scheduleId: string): Promise<void> {
  try {
    await client.schedule.getHandle(scheduleId).trigger();
  } catch (err) {
    throw notFound(err, scheduleId);
  }
}

function notFound(err: unknown, scheduleId: string): unknown {
  if (err instanceof ScheduleNotFoundError || (err as { code?: number }).code === 5) return new UserFacingError(`no schedule with id ${JSON.stringify(scheduleId)} (mlops schedule list)`);
  return err;
}
