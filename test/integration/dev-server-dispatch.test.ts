import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { startTemporalDevServer, type TemporalDevServer } from '../../infra/services';
import { testServices } from '../helpers/real';
import { workflowBundle } from '../helpers/workers';
import { TASK_QUEUES } from '../../workflows/contracts/names';

/**
 * The dev server we start (dev stack, demo, bench) dispatches with eager activity execution on:
 * the server's own counter of activities it handed straight back to the worker that scheduled
 * them rises with a chain of activities on the workflow's queue. Without the setting it stays
 * absent; the latency it buys is measured by `npm run bench -- ct`, not here.
 */

let server: TemporalDevServer;
let stateDir: string;

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dispatch-'));
  server = await startTemporalDevServer({ cli: testServices.temporalCli(), stateDir });
});

afterAll(async () => {
  await server?.process.stop();
  if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
});

async function eagerActivities(queue: string): Promise<number> {
  const text = await (await fetch(server.metricsUrl)).text();
  return text
    .split('\n')
    // The server's reporter writes label values with '-' as '_'.
    .filter((l) => l.startsWith('activity_eager_execution{') && l.includes(`taskqueue="${queue.replace(/[^A-Za-z0-9_]/g, '_')}"`))
    .reduce((sum, l) => sum + Number(l.trim().split(/\s+/).pop()), 0);
}

test('a chain of activities on the workflow queue is dispatched eagerly by our dev server', async () => {
  // Its own server, so the control queue is this test's alone; the pipeline's activities go there.
  const queue = TASK_QUEUES.control;
  const connection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection: await Connection.connect({ address: server.address }), namespace: server.namespace });
  const worker = await Worker.create({ connection, namespace: server.namespace, taskQueue: queue, workflowBundle: await workflowBundle(), activities: { noop: async () => undefined } });
  try {
    expect(await eagerActivities(queue)).toBe(0);
    const result = await worker.runUntil(client.workflow.execute('noopPipeline', { taskQueue: queue, workflowId: `dispatch-${randomUUID()}`, args: [{ steps: 5, raw: true }] }));
    expect(result.steps).toBe(5);
    // The server reports its counters about once a second: wait for the report, not for a time.
    let eager = 0;
    for (const deadline = Date.now() + 60_000; eager < 1 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) eager = await eagerActivities(queue);
    expect(eager).toBeGreaterThanOrEqual(1);
  } finally {
    await connection.close();
    await client.connection.close();
  }
});
