import { UserFacingError } from '../../infra/errors';
import { ABORT_SIGNAL, APPROVE_SIGNAL, PAUSE_SIGNAL, REJECT_SIGNAL, RESUME_SIGNAL, monitoringWorkflowId, promotionWorkflowId } from '../../workflows/contracts/names';
import { resumeOverrides } from '../../workflows/contracts/training-spec';
import { parseCommand, readJson, requireModel, requireString, validate } from '../args';
import { connectClient } from '../connection';
import { print, printJson } from '../output';
import { signalRunning } from '../workflows';

/** The one-shot signals: each checks its payload, signals a running workflow, says what it did. */

async function send(workflowId: string, signal: string, payload: unknown, json: boolean, what: string, done: string): Promise<void> {
  const { client, connection } = await connectClient();
  try {
    const d = await signalRunning(client, workflowId, signal, payload, what);
    if (json) printJson({ workflowId, runId: d.runId, type: d.type, signal, payload });
    else print(done);
  } finally {
    await connection.close();
  }
}

export async function resume(argv: string[]): Promise<void> {
  const { values } = parseCommand('resume', argv, { 'workflow-id': { type: 'string' }, overrides: { type: 'string' }, json: { type: 'boolean', default: false } });
  const workflowId = requireString('resume', 'workflow-id', values['workflow-id']);
  const overrides = values.overrides ? validate(resumeOverrides, readJson('--overrides', values.overrides), 'resume overrides') : undefined;
  await send(workflowId, RESUME_SIGNAL, overrides ?? {}, values.json, 'training run', `resume sent to ${workflowId}${overrides ? ` with overrides ${Object.keys(overrides).join(', ')}` : ''}; follow it: mlops status --workflow-id ${workflowId}`);
}

export async function abort(argv: string[]): Promise<void> {
  const { values } = parseCommand('abort', argv, { 'workflow-id': { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean', default: false } });
  const workflowId = requireString('abort', 'workflow-id', values['workflow-id']);
  await send(workflowId, ABORT_SIGNAL, { reason: values.reason ?? 'mlops abort' }, values.json, 'training run', `abort sent to ${workflowId}`);
}

export async function approve(argv: string[]): Promise<void> {
  const { values } = parseCommand('approve', argv, { model: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean', default: false } });
  const model = requireModel('approve', values.model);
  const by = values.by ?? process.env.USER ?? 'mlops cli';
  await send(promotionWorkflowId(model), APPROVE_SIGNAL, { by }, values.json, 'promotion', `approved the promotion of ${model} (${promotionWorkflowId(model)})`);
}

export async function reject(argv: string[]): Promise<void> {
  const { values } = parseCommand('reject', argv, { model: { type: 'string' }, reason: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean', default: false } });
  const model = requireModel('reject', values.model);
  const by = values.by ?? process.env.USER ?? 'mlops cli';
  await send(promotionWorkflowId(model), REJECT_SIGNAL, { by, reason: values.reason ?? 'rejected from the mlops cli' }, values.json, 'promotion', `rejected the promotion of ${model} (${promotionWorkflowId(model)})`);
}

/** `monitor pause|resume --model m`: the monitoring workflow keeps running, checks stop or restart. */
export async function monitor(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommand('monitor', argv, { model: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean', default: false } }, true);
  const action = positionals[0];
  if ((action !== 'pause' && action !== 'resume') || positionals.length > 1) throw new UserFacingError('monitor: usage: mlops monitor pause|resume --model <name> [--reason <text>]');
  const model = requireModel('monitor', values.model);
  const workflowId = monitoringWorkflowId(model);
  await send(workflowId, action === 'pause' ? PAUSE_SIGNAL : RESUME_SIGNAL, { reason: values.reason ?? `mlops monitor ${action}` }, values.json, 'monitoring workflow', `${action === 'pause' ? 'paused' : 'resumed'} monitoring of ${model} (${workflowId})`);
}
