import { randomUUID } from 'node:crypto';
import { promotionWorkflowId } from '../../workflows/contracts/names';
import { platformCheck as platformCheckWorkflow } from '../../workflows/platform-check';
import { promotion } from '../../workflows/promotion';
import type { PlatformCheckResult } from '../../workflows/platform-check';
import type { PromotionStatus } from '../../workflows/promotion';
import { parseCommand, requireModel } from '../args';
import { connectClient } from '../connection';
import { print, printJson } from '../output';
import { resultOf } from '../workflows';

export async function rollback(argv: string[]): Promise<void> {
  const { values } = parseCommand('rollback', argv, { model: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean', default: false } });
  const model = requireModel('rollback', values.model);
  const workflowId = promotionWorkflowId(model);
  const { client, connection, taskQueues } = await connectClient();
  try {
    const running = await client.workflow
      .getHandle(workflowId)
      .describe()
      .then((d) => d.status.name === 'RUNNING')
      .catch(() => false);
    let handle;
    if (running) {
      handle = client.workflow.getHandle(workflowId);
      await handle.signal('rollback', { reason: values.reason ?? 'mlops rollback' });
      if (!values.json) process.stderr.write(`signalled rollback to the running promotion ${workflowId}; waiting…\n`);
    } else {
      handle = await client.workflow.start(promotion, { taskQueue: taskQueues.control, workflowId, args: [{ model, rollback: true, reason: values.reason }] });
      if (!values.json) process.stderr.write(`started ${workflowId} (rollback); waiting…\n`);
    }
    const result = await resultOf<PromotionStatus>(handle);
    if (values.json) printJson(result);
    else print(`${model}: ${result.outcome}; production is v${result.outcome === 'rolled-back' ? (result.traffic?.stable ?? result.previous) : result.candidate} (${result.reason ?? ''})`);
  } finally {
    await connection.close();
  }
}

export async function platformCheck(argv: string[]): Promise<void> {
  const { values } = parseCommand('platform-check', argv, { 'gpu-class': { type: 'string' }, 'skip-gpu': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } });
  const { client, connection, address, taskQueues } = await connectClient();
  try {
    const workflowId = `platform-check-${randomUUID().slice(0, 8)}`;
    const handle = await client.workflow.start(platformCheckWorkflow, {
      taskQueue: taskQueues.control,
      workflowId,
      args: [{ gpuClass: values['gpu-class'], skipGpu: values['skip-gpu'] }],
    });
    if (!values.json) process.stderr.write(`started ${workflowId} on ${address}; waiting…\n`);
    const result = await resultOf<PlatformCheckResult>(handle);
    if (values.json) {
      printJson(result);
      return;
    }
    for (const q of result.queues) {
      print(q.ok ? `${q.queue.padEnd(16)} ok  ${q.result.worker}  ${q.result.device}  onnx on ${q.result.onnx.provider}${q.result.onnx.fallback ? ' (CUDA unavailable)' : ''}  ${q.result.ms} ms` : `${q.queue.padEnd(16)} FAILED  ${q.error}`);
    }
  } finally {
    await connection.close();
  }
}
