import { UserFacingError } from '../../infra/errors';
import { checkCron, parseCommand, parseDuration, requireModel, requireString } from '../args';
import { connectClient } from '../connection';
import { isoSeconds, print, printJson, table } from '../output';
import { createRetrainSchedule, deleteSchedule, describeSchedule, listSchedules, triggerSchedule, type ScheduleView } from '../schedules';
import { readPolicy } from './lifecycle';

const SUBCOMMANDS = 'create | list | describe | delete | trigger';

export async function schedule(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create':
      return create(rest);
    case 'list':
      return list(rest);
    case 'describe':
    case 'delete':
    case 'trigger':
      return byId(sub, rest);
    default:
      throw new UserFacingError(`schedule: expected one of ${SUBCOMMANDS}${sub ? `, got ${JSON.stringify(sub)}` : ''}`);
  }
}

async function create(argv: string[]): Promise<void> {
  const { values } = parseCommand('schedule create', argv, {
    model: { type: 'string' },
    cron: { type: 'string' },
    every: { type: 'string' },
    'schedule-id': { type: 'string' },
    reason: { type: 'string' },
    policy: { type: 'string' },
    paused: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  const model = requireModel('schedule create', values.model);
  const cron = values.cron !== undefined ? checkCron(values.cron) : undefined;
  const everySeconds = values.every !== undefined ? parseDuration('every', values.every) : undefined;
  if (values.reason !== undefined && (values.reason.length === 0 || values.reason.length > 400)) throw new UserFacingError('--reason: must be 1–400 characters');
  const policy = values.policy ? readPolicy('--policy', values.policy, model) : undefined;
  const { client, connection, taskQueues } = await connectClient();
  try {
    const view = await createRetrainSchedule(client, { model, scheduleId: values['schedule-id'], cron, everySeconds, reason: values.reason, policy, paused: values.paused }, taskQueues.control);
    if (values.json) printJson(view);
    else print(`created schedule ${view.scheduleId}: ${view.spec} → scheduledRetrain(${model}); next ${view.nextActionTimes.slice(0, 3).map((t) => isoSeconds(t)).join(', ') || '-'}\nrun it now: mlops schedule trigger --schedule-id ${view.scheduleId}`);
  } finally {
    await connection.close();
  }
}

async function list(argv: string[]): Promise<void> {
  const { values } = parseCommand('schedule list', argv, { all: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } });
  const { client, connection } = await connectClient();
  try {
    const views = await listSchedules(client, { all: values.all });
    if (values.json) printJson(views);
    else if (!views.length) print(values.all ? 'no schedules' : 'no retrain schedules (mlops schedule create …; --all lists every schedule)');
    else print(table(['schedule', 'model', 'spec', 'state', 'next', 'last run'], views.map((v) => [v.scheduleId, v.model, v.spec, v.paused ? 'paused' : 'active', isoSeconds(v.nextActionTimes[0]), lastRun(v)])));
  } finally {
    await connection.close();
  }
}

function lastRun(v: ScheduleView): string | undefined {
  const a = v.recentActions.at(-1);
  return a ? `${isoSeconds(a.takenAt)} ${a.workflowId}` : undefined;
}

async function byId(sub: 'describe' | 'delete' | 'trigger', argv: string[]): Promise<void> {
  const { values } = parseCommand(`schedule ${sub}`, argv, { 'schedule-id': { type: 'string' }, json: { type: 'boolean', default: false } });
  const scheduleId = requireString(`schedule ${sub}`, 'schedule-id', values['schedule-id']);
  const { client, connection } = await connectClient();
  try {
    if (sub === 'describe') {
      const v = await describeSchedule(client, scheduleId);
      if (values.json) printJson(v);
      else print(describeView(v));
      return;
    }
    if (sub === 'delete') await deleteSchedule(client, scheduleId);
    else await triggerSchedule(client, scheduleId);
    if (values.json) printJson({ scheduleId, [sub === 'delete' ? 'deleted' : 'triggered']: true });
    else print(sub === 'delete' ? `deleted schedule ${scheduleId}` : `triggered schedule ${scheduleId} (mlops schedule describe --schedule-id ${scheduleId} shows the run)`);
  } finally {
    await connection.close();
  }
}

function describeView(v: ScheduleView): string {
  const lines = [
    `schedule ${v.scheduleId}: ${v.paused ? 'paused' : 'active'}${v.note ? ` (${v.note})` : ''}`,
    `  action   ${v.workflowType ?? '-'}${v.model ? ` for ${v.model}` : ''}`,
    `  spec     ${v.spec ?? '-'}`,
    `  next     ${v.nextActionTimes.slice(0, 3).map((t) => isoSeconds(t)).join(', ') || '-'}`,
    `  runs     ${v.numActionsTaken ?? 0} taken, ${v.numActionsSkippedOverlap ?? 0} skipped (overlap)`,
  ];
  for (const a of v.recentActions) lines.push(`  ran      ${isoSeconds(a.takenAt)} ${a.workflowId}`);
  return lines.join('\n');
}
