import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { UserFacingError, runMain } from '../infra/errors';
import { TASK_QUEUES } from '../workflows/definitions';
import type { PlatformCheckResult } from '../workflows/platform-check';
import { connectClient } from './connection';

const USAGE = `usage: mlops <command> [options]

commands:
  platform-check [--gpu-class <class>] [--skip-gpu] [--json]
      run platformCheck on every queue and print which worker served each
`;

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
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UserFacingError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
});
