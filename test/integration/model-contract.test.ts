import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Client as PgClient } from 'pg';
import { createDeploymentActivities } from '../../activities/deployment';
import { getModelByName, getModelVersion, setAlias } from '../../infra/db/repositories';
import type { WorkerRuntime } from '../../workers/runtime';
import { TASK_QUEUES, lifecycleWorkflowId } from '../../workflows/contracts/names';
import { lifecycleStatusQuery, type LifecycleStatus } from '../../workflows/contracts/lifecycle';
import type { TrainingResult } from '../../workflows/continuous-training';
import type { TrainingSpec, TrainingSpecInput } from '../../workflows/contracts/training-spec';
import { createTemporalEnv, independentPg, openTestRuntime, testEnv } from '../helpers/real';
import { literal, withDuckDb } from '../../activities/data/duck';
import { flightsParquetPath } from '../../activities/data/snapshot';
import { runEntry } from '../helpers/run-entry';
import type { PipelineStatus } from '../../workflows/pipeline';
import { waitFor } from '../helpers/wait';
import { withTestWorkers, workflowBundle } from '../helpers/workers';

/**
 * A model's contract with its clients, kept across retrains: a lifecycle adopted for a model that
 * already serves trains on that model's data and features; a candidate with other inputs is
 * rejected unless the spec declares the change, and the production move then records it.
 */

let env: TestWorkflowEnvironment;
let runtime: WorkerRuntime;
let pg: PgClient;

beforeAll(async () => {
  [env, runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(`contract-${randomUUID().slice(0, 8)}`)]);
  pg = await independentPg();
  await workflowBundle();
});

afterAll(async () => {
  await pg?.end();
  await runtime?.close();
  await env?.teardown();
});

/** A small model on February flights, on three of the preset's features. */
const spec = (model: string, extra: Partial<TrainingSpecInput> = {}): TrainingSpecInput => ({
  model,
  dataset: { flights: { from: '2001-02', to: '2001-02' } },
  preset: 'flights-delay',
  features: [
    { name: 'distance', kind: 'numeric' },
    { name: 'origin', kind: 'categorical' },
    { name: 'hour', kind: 'numeric', column: 'date', transform: 'hour' },
  ],
  evaluation: { slices: [{ feature: 'distance', edges: [500, 1500] }] },
  sampleRows: 4000,
  hyperparameters: { rounds: 5, maxDepth: 3 },
  resources: { gpu: 0 },
  gates: { minAuc: 0, maxBaselineLoss: 1 },
  ...extra,
});

async function train(input: TrainingSpecInput): Promise<TrainingResult> {
  const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `ct-${input.model}-${randomUUID().slice(0, 6)}`, args: [input] });
  return (await handle.result()) as TrainingResult;
}

async function toProduction(model: string, version: number): Promise<void> {
  const m = (await getModelByName(runtime.db, model))!;
  await setAlias(runtime.db, m.id, 'production', (await getModelVersion(runtime.db, m.id, version))!.id, { kind: 'manual', movedBy: 'test' });
}

test('a lifecycle started for a model trained on its own CSV trains the next version on that CSV and its features, not the default template', async () => {
  const model = `adopt-${randomUUID().slice(0, 8)}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'adopt-'));
  const csv = path.join(dir, 'feb.csv');
  await withDuckDb((c) => c.run(`COPY (SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 2 LIMIT 6000) TO ${literal(csv)} (FORMAT csv, HEADER)`));
  const dataset = { uris: [`file://${csv}`] };
  await withTestWorkers(
    env,
    runtime,
    async () => {
      const v1 = await train(spec(model, { dataset }));
      expect(v1.status).toBe('registered');
      await toProduction(model, v1.version);
      const handle = await env.client.workflow.signalWithStart('modelLifecycle', {
        taskQueue: TASK_QUEUES.control,
        workflowId: lifecycleWorkflowId(model),
        args: [{ model, policy: { cooldownSeconds: 0, promote: false, monitoring: { enabled: false } } }],
        signal: 'retrain',
        signalArgs: [{ reason: 'adopted', source: 'api' }],
      });
      try {
        const s: LifecycleStatus = await waitFor('the retrain to start', async () => {
          const st: LifecycleStatus = await handle.query(lifecycleStatusQuery);
          return st.running?.kind === 'training' ? st : undefined;
        });
        expect(s.decisions.some((d) => d.kind === 'policy' && d.detail.includes(`adopted from v${v1.version}`))).toBe(true);
        const history = await env.client.workflow.getHandle(s.running!.workflowId).fetchHistory();
        const child = defaultPayloadConverter.fromPayload(history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!) as TrainingSpec;
        expect(child.dataset).toEqual(dataset);
        expect(child.features!.map((f) => f.name)).toEqual(['distance', 'origin', 'hour']);
        expect(child.sampleRows).toBe(4000);
        const done = await waitFor('the retrain to finish', async () => {
          const st: LifecycleStatus = await handle.query(lifecycleStatusQuery);
          return st.decisions.find((d) => d.kind === 'training-finished');
        }, 180_000);
        expect(done.detail).toMatch(/registered/);
      } finally {
        await handle.terminate('test over').catch(() => undefined);
      }
    },
    { queues: [TASK_QUEUES.control, TASK_QUEUES.cpu] },
  ).finally(() => fs.rm(dir, { recursive: true, force: true }));
});

test('a candidate with other inputs than production is rejected; declared, it is registered and its move to production records the change', async () => {
  const model = `sig-${randomUUID().slice(0, 8)}`;
  const other = { features: [{ name: 'distance', kind: 'numeric' as const }, { name: 'destination', kind: 'categorical' as const }] };
  const [v1, refused, declared] = await withTestWorkers(
    env,
    runtime,
    async () => {
      const first = await train(spec(model));
      await toProduction(model, first.version);
      return [first, await train(spec(model, other)), await train(spec(model, { ...other, gates: { minAuc: 0, maxBaselineLoss: 1, allowSignatureChange: true } }))] as const;
    },
    { queues: [TASK_QUEUES.control, TASK_QUEUES.cpu] },
  );
  expect(refused.status).toBe('rejected');
  expect(refused.reasons).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^signature vs v${v1.version}: changed: input -origin BYTES, input -date INT64, input \\+destination BYTES`))]));
  expect(declared.status).toBe('registered');

  const acts = createDeploymentActivities({ db: runtime.db, artifacts: runtime.artifacts, config: runtime.config });
  const moved = (await new MockActivityEnvironment({ workflowType: 'promotion', workflowExecution: { workflowId: `promotion-${model}`, runId: 'r1' } } as never).run(acts.setProduction, { model, version: declared.version, kind: 'promote' as const, reason: 'declared' })) as { signatureChange?: unknown };
  expect(moved.signatureChange).toEqual({ from: v1.version, inputs: ['-origin BYTES', '-date INT64', '+destination BYTES'], outputs: [] });
  const h = await pg.query(
    `select h.reason, h.details from alias_history h join models m on m.id = h.model_id join model_versions v on v.id = h.model_version_id where m.name = $1 and h.alias = 'production' and v.version = $2`,
    [model, declared.version],
  );
  expect(h.rows[0].reason).toMatch(/breaking signature change from v\d+: -origin BYTES/);
  expect(h.rows[0].details.signatureChange.from).toBe(v1.version);
});

test('a span whose columns changed stops the run with a proposal; `mlops schema accept` makes it version 2 and the resumed run trains; schemaChange accept goes on by itself', async () => {
  const model = `schema-${randomUUID().slice(0, 8)}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'schema-'));
  const plain = path.join(dir, 'feb.parquet');
  const wider = path.join(dir, 'feb-wider.parquet');
  const src = `(SELECT * FROM read_parquet(${literal(flightsParquetPath())}) WHERE month(date) = 2 LIMIT 6000)`;
  await withDuckDb(async (c) => {
    await c.run(`COPY ${src} TO ${literal(plain)} (FORMAT parquet)`);
    await c.run(`COPY (SELECT *, 'x' AS note FROM ${src}) TO ${literal(wider)} (FORMAT parquet)`);
  });
  const env2 = { ...process.env, ...testEnv(), TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace ?? 'default', MLOPS_LOG_LEVEL: 'WARN' };
  try {
    await withTestWorkers(
      env,
      runtime,
      async () => {
        const v1 = await train(spec(model, { dataset: { uris: [`file://${plain}`] } }));
        expect(v1.status).toBe('registered');
        const workflowId = `ct-${model}-wider`;
        const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec(model, { dataset: { uris: [`file://${wider}`] } })] });
        const paused = await waitFor('the run to stop on the schema change', async () => {
          const st: PipelineStatus = await handle.query('status');
          return st.state === 'awaiting-resume' ? st : undefined;
        });
        expect(paused.failure?.step).toBe('validate-data');
        expect(paused.failure?.message).toMatch(/schema changed from version 1 \(column note is not in the schema\).*mlops schema accept --model/);
        const proposals = await pg.query(`select s.version, s.status from data_schemas s join models m on m.id = s.model_id where m.name = $1 order by s.version`, [model]);
        expect(proposals.rows).toEqual([{ version: 1, status: 'accepted' }, { version: 2, status: 'proposed' }]);

        const accepted = await runEntry('client/cli.ts', ['schema', 'accept', '--model', model, '--by', 'test'], env2, 60_000);
        expect(accepted.stderr).toBe('');
        expect(accepted.stdout).toContain(`${model}: schema version 2 accepted`);
        await handle.signal('resume', {});
        const done = (await handle.result()) as TrainingResult;
        expect(done.status).toBe('registered');
        const after = await pg.query(`select s.version, s.status, s.accepted_by from data_schemas s join models m on m.id = s.model_id where m.name = $1 order by s.version`, [model]);
        expect(after.rows).toEqual([
          { version: 1, status: 'accepted', accepted_by: null },
          { version: 2, status: 'accepted', accepted_by: 'mlops schema accept (test)' },
        ]);
        const listed = await runEntry('client/cli.ts', ['schema', '--model', model], env2, 60_000);
        expect(listed.stdout).toMatch(/v2\s+accepted/);

        // With schemaChange: 'accept', the narrower data (note gone) is version 3 without a stop.
        const v3 = await train(spec(model, { dataset: { uris: [`file://${plain}`] }, schemaChange: 'accept' }));
        expect(v3.status).toBe('registered');
        const last = await pg.query(`select s.version, s.status from data_schemas s join models m on m.id = s.model_id where m.name = $1 order by s.version desc limit 1`, [model]);
        expect(last.rows[0]).toEqual({ version: 3, status: 'accepted' });
      },
      { queues: [TASK_QUEUES.control, TASK_QUEUES.cpu] },
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
