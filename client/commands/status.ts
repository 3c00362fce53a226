import type { Client } from '@temporalio/client';
import { UserFacingError } from '../../infra/errors';
import { LATEST_REPORT_QUERY, lifecycleWorkflowId, monitoringWorkflowId } from '../../workflows/contracts/names';
import type { LifecycleStatus, MonitoringReport } from '../../workflows/contracts/lifecycle';
import type { PipelineStatus } from '../../workflows/pipeline';
import type { PromotionStatus } from '../../workflows/promotion';
import { parseCommand, requireModel } from '../args';
import { connectClient } from '../connection';
import { isoSeconds, print, printJson } from '../output';
import { lifecycleView, monitoringView, pipelineView, promotionView } from '../views';
import { describeWorkflow, queryStatus, tryQuery } from '../workflows';

export async function status(argv: string[]): Promise<void> {
  const { values } = parseCommand('status', argv, { model: { type: 'string' }, 'workflow-id': { type: 'string' }, json: { type: 'boolean', default: false } });
  if (Boolean(values.model) === Boolean(values['workflow-id'])) throw new UserFacingError('status: give --model <name> or --workflow-id <id>');
  const { client, connection } = await connectClient();
  try {
    if (values.model) await modelStatus(client, requireModel('status', values.model), values.json);
    else await workflowStatus(client, values['workflow-id']!, values.json);
  } finally {
    await connection.close();
  }
}

async function modelStatus(client: Client, model: string, json: boolean): Promise<void> {
  const id = lifecycleWorkflowId(model);
  const d = await describeWorkflow(client, id).catch((err: unknown) => {
    // Only "not found" is a UserFacingError here; say what would create it.
    if (err instanceof UserFacingError) throw new UserFacingError(`no lifecycle workflow for model ${model} (id ${id}); mlops retrain --model ${model} starts one`);
    throw err;
  });
  const lifecycle = await queryStatus<LifecycleStatus>(client, id, 'lifecycle workflow');
  const monitoringId = monitoringWorkflowId(model);
  const mon = await describeWorkflow(client, monitoringId).catch(() => undefined);
  const monitoringRunning = mon?.status.name === 'RUNNING';
  const report = monitoringRunning ? await tryQuery<MonitoringReport | null>(client, monitoringId, LATEST_REPORT_QUERY) : undefined;
  const monitoring = monitoringRunning ? { workflowId: monitoringId, latestReport: report ?? null } : null;
  if (json) {
    printJson({ workflowId: id, workflowStatus: d.status.name, lifecycle, monitoring });
    return;
  }
  const lines = [lifecycleView(lifecycle)];
  if (d.status.name !== 'RUNNING') lines.unshift(`(lifecycle workflow ${id} is ${d.status.name.toLowerCase()}; last known state)`);
  lines.push('', monitoring ? monitoringView(monitoring.latestReport) : 'monitoring: not running');
  print(lines.join('\n'));
}

/** Any of our workflows: the shape of the `status` answer tells which view fits. */
async function workflowStatus(client: Client, workflowId: string, json: boolean): Promise<void> {
  const d = await describeWorkflow(client, workflowId);
  const st = await queryStatus<unknown>(client, workflowId).catch((err: unknown) => {
    // A closed run answers only while a worker can replay it; describe alone still says how it ended.
    if (d.status.name !== 'RUNNING') return undefined;
    throw err;
  });
  const info = { workflowId, runId: d.runId, type: d.type, workflowStatus: d.status.name, startTime: isoSeconds(d.startTime), closeTime: isoSeconds(d.closeTime), taskQueue: d.taskQueue };
  if (json) {
    printJson({ ...info, status: st ?? null });
    return;
  }
  const header = `${d.type} ${workflowId}: ${d.status.name.toLowerCase()} (started ${info.startTime}${info.closeTime ? `, closed ${info.closeTime}` : ''})`;
  if (st === undefined) {
    print(`${header}\n(no worker answered the status query for this closed run)`);
    return;
  }
  if (isPipelineStatus(st)) print(pipelineView(st));
  else if (isPromotionStatus(st)) print(promotionView(workflowId, st));
  else if (isLifecycleStatus(st)) print(lifecycleView(st));
  else print(`${header}\n${JSON.stringify(st, null, 2)}`);
}

function isPipelineStatus(v: unknown): v is PipelineStatus {
  return typeof v === 'object' && v !== null && Array.isArray((v as PipelineStatus).steps) && typeof (v as PipelineStatus).pipeline === 'string';
}
function isPromotionStatus(v: unknown): v is PromotionStatus {
  return typeof v === 'object' && v !== null && typeof (v as PromotionStatus).stage === 'string' && 'candidate' in v;
}
function isLifecycleStatus(v: unknown): v is LifecycleStatus {
  return typeof v === 'object' && v !== null && typeof (v as LifecycleStatus).phase === 'string' && Array.isArray((v as LifecycleStatus).decisions);
}
