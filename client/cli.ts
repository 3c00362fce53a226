import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { UserFacingError, runMain } from '../infra/errors';
import { TASK_QUEUES, promotionWorkflowId } from '../workflows/definitions';
import type { PlatformCheckResult } from '../workflows/platform-check';
import type { PromotionStatus } from '../workflows/promotion';
import { connectClient } from './connection';

const USAGE = `usage: mlops <command> [options]

commands:
  platform-check [--gpu-class <class>] [--skip-gpu] [--json]
      run platformCheck on every queue and print which worker served each
  rollback --model <name> [--reason <text>] [--json]
      return <name> to its previous production version: signals the running promotion if there
      is one, else runs an immediate rollback (workflow promotion-<name>)
`;

async function rollback(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { model: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean', default: false } } });
  if (!values.model || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(values.model)) throw new UserFacingError('rollback: --model <name> is required (lowercase letters, digits and dashes)');
  const model = values.model;
  const workflowId = promotionWorkflowId(model);
  const { client, connection } = await connectClient();
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
      handle = await client.workflow.start('promotion', { taskQueue: TASK_QUEUES.control, workflowId, args: [{ model, rollback: true, reason: values.reason }] });
      if (!values.json) process.stderr.write(`started ${workflowId} (rollback); waiting…\n`);
    }
    let result: PromotionStatus;
    try {
      result = (await handle.result()) as PromotionStatus;
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw new UserFacingError(err.cause?.message ?? err.message);
      throw err;
    }
    if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else process.stdout.write(`${model}: ${result.outcome}; production is v${result.outcome === 'rolled-back' ? (result.traffic?.stable ?? result.previous) : result.candidate} (${result.reason ?? ''})\n`);
  } finally {
    await connection.close();
  }
}

async function platformCheck(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { 'gpu-class': { type: 'string' }, 'skip-gpu': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
  });
  const { client, connection, address } = await connectClient();
  try {
    const workflowId = `platform-check-${randomUUID().slice(0, 8)}`;
    const handle = await client.workflow.start('platformCheck', {
      taskQueue: TASK_QUEUES.control,
      workflowId,
      args: [{ gpuClass: values['gpu-class'], skipGpu: values['skip-gpu'] }],
    });
    if (!values.json) process.stderr.write(`started ${workflowId} on ${address}; waiting…\n`);
    let result: PlatformCheckResult;
    try {
      result = await handle.result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) throw new UserFacingError(err.cause?.message ?? err.message);
      throw err;
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    for (const q of result.queues) {
      process.stdout.write(q.ok ? `${q.queue.padEnd(16)} ok  ${q.result.worker}  ${q.result.device}  ${q.result.ms} ms\n` : `${q.queue.padEnd(16)} FAILED  ${q.error}\n`);
    }
  } finally {
    await connection.close();
  }
}

runMain(async () => {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case 'platform-check':
      return platformCheck(rest);
    case 'rollback':
      return rollback(rest);
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UserFacingError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
});
