import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import { JQ, ensureDebianTool } from '../../infra/debian-tools';
import { createLogger } from '../../infra/log';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import { gpuClassQueue } from '../../workflows/contracts/task-queues';
import type { TrainingSpecInput } from '../../workflows/contracts/training-spec';
import type { TrainingResult } from '../../workflows/continuous-training';
import type { PipelineStatus } from '../../workflows/pipeline';
import { waitForCheckpoint } from '../helpers/checkpoints';
import { createTemporalEnv, independentPg, openTestRuntime } from '../helpers/real';
import { readmeBlock, runReadmeLine } from '../helpers/readme-commands';
import { waitFor } from '../helpers/wait';
import { callCounter, withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * The README's "Operator controls" blocks, run line by line with bash against this file's dev
 * server (only the workflow id is this test's): pause and unpause a training, move a waiting
 * train step to another GPU pool, reset a failed run to the step that failed.
 */

const { PendingActivityState } = temporal.api.enums.v1;

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;

beforeAll(async () => {
  ensureDebianTool(JQ, createLogger('test'));
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`ops-${randomUUID().slice(0, 8)}`)]);
  pg = await independentPg();
  await workflowBundle();
});

afterAll(async () => {
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
});

/** Runs one README line with this test's workflow id. */
const sh = (line: string, workflowId: string) => runReadmeLine(line.replaceAll('train-flights-jan', workflowId), env);

const SMALL = { preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } }, sampleRows: 3000, hyperparameters: { rounds: 5 }, gates: { maxBaselineLoss: 1 } } as const;

const start = (workflowId: string, spec: TrainingSpecInput) => env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec] });

async function pendingTrain(workflowId: string) {
  const d = await env.client.workflow.getHandle(workflowId).describe();
  return d.raw.pendingActivities?.find((a) => a.activityType?.name === 'train');
}

function heartbeatOf(pending: Awaited<ReturnType<typeof pendingTrain>>): { round: number; checkpoint?: { round: number; uri: string } } | undefined {
  const data = pending?.heartbeatDetails?.payloads?.[0]?.data;
  return data ? JSON.parse(Buffer.from(data).toString('utf8')) : undefined;
}

async function versionCount(model: string): Promise<number> {
  const r = await pg.query(`select count(*)::int as n from model_versions mv join models m on m.id = mv.model_id where m.name = $1`, [model]);
  return r.rows[0].n as number;
}

async function trainRow(workflowId: string): Promise<{ status: string; error: string | null } | undefined> {
  const r = await pg.query(`select s.status, s.error from step_runs s join pipeline_runs p on p.id = s.pipeline_run_id where p.workflow_id = $1 and s.step_name = 'train'`, [workflowId]);
  return r.rows[0];
}

const PAUSE_ROUNDS = 4000;

test('pause stops a training at its next heartbeat with its checkpoint; unpause continues from that checkpoint', async () => {
  const [pause, describe, unpause] = readmeBlock('operator: pause');
  expect([pause, describe, unpause].map((l) => l!.split(' ').slice(0, 3).join(' '))).toEqual(['temporal activity pause', 'temporal workflow describe', 'temporal activity unpause']);
  const model = `ops-pause-${randomUUID().slice(0, 6)}`;
  const workflowId = `ops-pause-${randomUUID()}`;
  await withTestWorkers(env, runtime, async () => {
    const handle = await start(workflowId, {
      model,
      preset: 'flights-delay',
      dataset: { flights: { from: '2001-01', to: '2001-01' } },
      sampleRows: 60_000,
      // Long enough that the pause (seen at the next heartbeat, up to 1.6 s after the CLI call)
      // lands well before the end: 600 rounds once took 2.9 s on CI and finished first.
      hyperparameters: { rounds: PAUSE_ROUNDS, maxDepth: 6 },
      resources: { gpu: 0 },
      training: { heartbeatSeconds: 2, checkpointEvery: 5 },
      gates: { maxBaselineLoss: 1 },
    });
    await waitForCheckpoint(handle, 10, () => '');
    await sh(pause!, workflowId);

    // The attempt stopped (its step row says so) and the server holds the step, paused.
    const row = await waitFor('the train step row to say paused', async () => ((await trainRow(workflowId))?.status === 'paused' ? trainRow(workflowId) : undefined), 30_000);
    expect(row!.error).toMatch(/^paused by an operator/);
    const paused = await waitFor('the train activity paused and waiting', async () => {
      const p = await pendingTrain(workflowId);
      return p?.paused && p.state !== PendingActivityState.PENDING_ACTIVITY_STATE_STARTED ? p : undefined;
    });
    const kept = heartbeatOf(paused)!;
    expect(kept.checkpoint!.round).toBeGreaterThanOrEqual(10);
    expect(kept.checkpoint!.round).toBeLessThan(PAUSE_ROUNDS);
    // Nothing trains while paused: the heartbeat and the attempt stay where they were.
    await new Promise((r) => setTimeout(r, 3000));
    const still = await pendingTrain(workflowId);
    expect(still!.paused).toBe(true);
    expect(heartbeatOf(still)!.checkpoint!.round).toBe(kept.checkpoint!.round);
    expect(still!.attempt).toBe(paused.attempt);
    expect(await sh(describe!, workflowId)).toMatch(/State\s+Paused/);

    await sh(unpause!, workflowId);
    const result = (await handle.result()) as TrainingResult;
    expect(result.status).toBe('registered');
    expect(result.resumedFromRound).toBe(kept.checkpoint!.round);
    const status = (await handle.query('status')) as PipelineStatus;
    expect((status.steps.find((s) => s.name === 'train')!.outputs as { rounds: number }).rounds).toBe(PAUSE_ROUNDS);
    expect((await trainRow(workflowId))!.status).toBe('succeeded');
    expect(await versionCount(model)).toBe(1);
  });
});

test("update-options changes a waiting train step's timeout; move-step sends it to another GPU pool, where it runs", async () => {
  const [update, move] = readmeBlock('operator: move');
  expect(update).toMatch(/^temporal activity update-options .*--activity-id train --start-to-close-timeout 12h$/);
  const target = /--task-queue (\S+)/.exec(move!)![1]!;
  expect(target).toBe(gpuClassQueue('h100'));
  const model = `ops-move-${randomUUID().slice(0, 6)}`;
  const workflowId = `ops-move-${randomUUID()}`;
  await withTestWorkers(
    env,
    runtime,
    async () => {
      const handle = await start(workflowId, { model, ...SMALL, resources: { gpu: 1, gpuClass: 'a100' } });
      const waiting = await waitFor('train waiting on the a100 pool', async () => {
        const p = await pendingTrain(workflowId);
        return p?.state === PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED ? p : undefined;
      });
      expect(waiting.activityId).toBe('train');
      expect(waiting.activityOptions?.taskQueue?.name).toBe(gpuClassQueue('a100'));
      expect(Number(waiting.activityOptions?.startToCloseTimeout?.seconds)).toBe(6 * 3600);

      await sh(update!, workflowId);
      const updated = await pendingTrain(workflowId);
      expect(Number(updated!.activityOptions?.startToCloseTimeout?.seconds)).toBe(12 * 3600);
      expect(updated!.activityOptions?.taskQueue?.name).toBe(gpuClassQueue('a100'));

      expect(await sh(move!, workflowId)).toContain(`train of ${workflowId}: ${gpuClassQueue('a100')} → ${target}; it waits there for a worker (1 worker polling)`);
      const result = (await handle.result()) as TrainingResult;
      expect(result.status).toBe('registered');
      const status = (await handle.query('status')) as PipelineStatus;
      expect(status.steps.find((s) => s.name === 'train')!.worker).toContain(target);
      expect(await versionCount(model)).toBe(1);
    },
    { queues: [TASK_QUEUES.control, TASK_QUEUES.cpu, target] },
  );
});

test('reset to the failed step of a failed run: the steps before it are kept, the rest run once more, nothing is written twice', async () => {
  const [query, reset, result] = readmeBlock('operator: reset');
  expect(reset).toMatch(/^temporal workflow reset /);
  const model = `ops-reset-${randomUUID().slice(0, 6)}`;
  const workflowId = `ops-reset-${randomUUID()}`;
  let broken = true;
  const counter = callCounter();
  await withTestWorkers(
    env,
    runtime,
    async () => {
      const handle = await start(workflowId, { model, ...SMALL, resources: { gpu: 0 }, onFailure: 'fail' });
      await expect(handle.result()).rejects.toThrow();
      expect(await versionCount(model)).toBe(0);
      const shown = JSON.parse(await sh(query!, workflowId)) as { step: string; message: string; resetEventId: number };
      expect(shown).toMatchObject({ step: 'evaluate', message: 'test: evaluation store unavailable' });
      // The reset point is the completion of the workflow task that scheduled the failed step.
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'evaluate');
      expect(scheduled).toHaveLength(1);
      expect(Number(scheduled[0]!.activityTaskScheduledEventAttributes!.workflowTaskCompletedEventId)).toBe(shown.resetEventId);

      broken = false;
      await sh(reset!, workflowId);
      const out = JSON.parse(await sh(result!, workflowId)) as { result?: TrainingResult; status?: string };
      const final = (out.result ?? out) as TrainingResult;
      expect(final.status).toBe('registered');
      expect(final.version).toBe(1);
      expect(await versionCount(model)).toBe(1);
      expect(counter.counts).toMatchObject({ snapshot: 1, validateData: 1, prepare: 1, train: 1, evaluate: 2, register: 1 });
    },
    {
      wrap: (name, fn) => {
        const counted = counter.wrap(name, fn, '');
        if (name !== 'evaluate') return counted;
        return async (...args) => {
          if (broken) {
            counter.counts.evaluate = (counter.counts.evaluate ?? 0) + 1;
            throw ApplicationFailure.nonRetryable('test: evaluation store unavailable', 'DataError');
          }
          return counted(...args);
        };
      },
    },
  );
});
