import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createLogger } from '../../infra/log';
import { hasCudaProviderFiles } from '../../infra/onnx-device';
import { startModelServer } from '../../workers/serving/server';
import type { Evaluation } from '../../activities/training/evaluate';
import type { MulticlassTrainingResult } from '../../workflows/continuous-training';
import { TASK_QUEUES } from '../../workflows/contracts/names';
import type { PipelineStatus } from '../../workflows/pipeline';
import type { PlatformCheckResult } from '../../workflows/platform-check';
import { createTemporalEnv, independentPg, openTestRuntime } from '../helpers/real';
import { startDevWorker, workerGroup } from '../helpers/run-entry';

/**
 * `resources.evaluateOn: "gpu"` on a GPU worker configured for CUDA (MLOPS_ONNX_DEVICE=cuda): the
 * evaluate step goes to the GPU class queue, leases the GPU and asks onnxruntime for its CUDA
 * provider there. This machine's GPU is a fake nvidia-smi and onnxruntime-node has no CUDA
 * files, so the step says so loudly, scores on the CPU, records where it scored, and gives the
 * figures a CPU evaluation gives.
 */

jest.setTimeout(600_000);

const bucket = `gpu-eval-${randomUUID().slice(0, 8)}`;
const workers = workerGroup();
let env: TestWorkflowEnvironment;
let dir: string;
let registered: string | undefined;
// What this onnxruntime-node install has: the CUDA provider only after an opt-in install.
const ORT_CUDA = hasCudaProviderFiles();

beforeAll(async () => {
  // One GPU and two GPU queues: its slot waits in one queue's long poll (see gpu-slots.test.ts); short polls keep the runs short.
  env = await createTemporalEnv(['--dynamic-config-value', 'matching.longPollExpirationInterval="5s"']);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpu-eval-'));
  const smi = path.join(dir, 'nvidia-smi');
  await fs.writeFile(smi, '#!/bin/sh\necho "0, GPU-11111111-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559"\n', { mode: 0o755 });
  // A GPU found (the fake nvidia-smi): the worker leases it, whatever --allow-cpu says.
  startDevWorker(workers, env, bucket, { MLOPS_NVIDIA_SMI: smi, MLOPS_ONNX_DEVICE: 'cuda' });
}, 300_000);

afterAll(async () => {
  workers.killAll();
  await env?.teardown();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const spec = (model: string, resources: Record<string, unknown>) => ({
  model,
  dataset: { bundled: 'seattle-weather' },
  features: [
    { name: 'precipitation', kind: 'numeric' },
    { name: 'temp_max', kind: 'numeric' },
    { name: 'temp_min', kind: 'numeric' },
    { name: 'wind', kind: 'numeric' },
    { name: 'month', kind: 'numeric', column: 'date', transform: 'month' },
  ],
  label: { column: 'weather', kind: 'multiclass' },
  split: { kind: 'time', column: 'date', testFraction: 0.2 },
  hyperparameters: { rounds: 20, maxDepth: 3 },
  // Registration is not what is judged here, only that the gates run on this evaluation.
  gates: { multiclassMetric: 'logLoss', maxBaselineLoss: 1 },
  resources,
});

async function run(model: string, resources: Record<string, unknown>): Promise<{ result: MulticlassTrainingResult; evaluation: Evaluation; queue: string | undefined }> {
  const workflowId = `ct-${model}`;
  const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId, args: [spec(model, resources)] });
  const result = (await handle.result()) as MulticlassTrainingResult;
  const status = (await handle.query('status')) as PipelineStatus;
  const history = await handle.fetchHistory();
  const queue = history.events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'evaluate')?.activityTaskScheduledEventAttributes?.taskQueue?.name ?? undefined;
  return { result, evaluation: status.steps.find((s) => s.name === 'evaluate')!.outputs as Evaluation, queue };
}

test('evaluateOn gpu: the step runs on the GPU class queue, asks onnxruntime for CUDA on the leased GPU, and records where it scored', async () => {
  const id = randomUUID().slice(0, 8);
  const onGpu = await run(`gpu-eval-${id}`, { gpuClass: 'h100', evaluateOn: 'gpu' });
  expect(onGpu.result.status).toBe('registered');
  registered = onGpu.result.model;
  const pg = await independentPg();
  try {
    const lineage = await pg.query(`select mv.metrics->'lineage'->'evaluatedOn' as on from model_versions mv where mv.id = $1`, [onGpu.result.modelVersionId]);
    expect(lineage.rows[0].on).toEqual(onGpu.evaluation.scoredOn);
  } finally {
    await pg.end();
  }
  expect(onGpu.queue).toBe(`${TASK_QUEUES.gpu}-h100`);
  if (ORT_CUDA) {
    expect(onGpu.evaluation.scoredOn).toEqual({ device: 'cuda:0' });
  } else {
    expect(onGpu.evaluation.scoredOn).toEqual({ device: 'cpu', fallback: expect.stringMatching(/Cuda|CUDA|shared library/) });
    expect(workers.log()).toMatch(/CUDA execution provider unavailable for GPU 0 .*THIS MODEL RUNS ON THE CPU\. To run it on the GPU: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
  }

  // The default: the CPU queue, the CPU, whatever the worker's setting; the same model gives the same figures.
  const onCpu = await run(`cpu-eval-${id}`, { gpuClass: 'h100' });
  expect(onCpu.queue).toBe(TASK_QUEUES.cpu);
  expect(onCpu.evaluation.scoredOn).toEqual({ device: 'cpu' });
  // The same trees (the files differ in the model name they carry), so the same figures.
  expect(onCpu.evaluation.metrics).toEqual(onGpu.evaluation.metrics);
  expect(onCpu.evaluation.slices).toEqual(onGpu.evaluation.slices);
});

test('evaluateOn gpu with gpu 0 is refused before any step, naming the field', async () => {
  const handle = await env.client.workflow.start('continuousTraining', { taskQueue: TASK_QUEUES.control, workflowId: `gpu-eval-bad-${randomUUID()}`, args: [spec(`gpu-eval-bad-${randomUUID().slice(0, 8)}`, { gpu: 0, evaluateOn: 'gpu' })] });
  const err = await handle.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/resources\.evaluateOn: evaluateOn "gpu" needs gpu ≥ 1/);
  const history = await handle.fetchHistory();
  expect(history.events?.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
});

test('a model server with MLOPS_ONNX_DEVICE=cuda loads versions on CUDA where onnxruntime has it, on the CPU with a warning where not, and serves them', async () => {
  expect(registered).toBeDefined();
  const runtime = await openTestRuntime(bucket);
  const lines: string[] = [];
  const out = { write: (chunk: string) => lines.push(chunk) > 0 } as unknown as NodeJS.WritableStream;
  const server = await startModelServer({ db: runtime.db, artifacts: runtime.artifacts, log: createLogger('gpu-serve', out), adminToken: 'gpu-serve-token', onnxDevice: 'cuda' });
  try {
    const loaded = await server.store.load(registered!, 1);
    expect(loaded.device).toBe(ORT_CUDA ? 'cuda:0' : 'cpu');
    if (!ORT_CUDA) expect(lines.join('')).toMatch(new RegExp(`WARN .*model ${registered} v1: onnxruntime: CUDA execution provider unavailable for GPU 0 .*THIS MODEL RUNS ON THE CPU`));
    const listing = (await (await fetch(`${server.url}/admin/models`, { headers: { authorization: 'Bearer gpu-serve-token' } })).json()) as Array<{ name: string; versions: Array<{ version: number; device: string }> }>;
    expect(listing.find((m) => m.name === registered)?.versions).toEqual([expect.objectContaining({ version: 1, device: loaded.device })]);
    const inputs = [
      ...['precipitation', 'temp_max', 'temp_min', 'wind'].map((name) => ({ name, datatype: 'FP32', shape: [1, 1], data: [name === 'precipitation' ? 0 : 10] })),
      { name: 'date', datatype: 'INT64', shape: [1, 1], data: [1_420_070_400] },
    ];
    const answer = await fetch(`${server.url}/v2/models/${registered}/versions/1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { outputs: Array<{ name: string; shape: number[] }> };
    expect(body.outputs.find((o) => o.name === 'probabilities')?.shape).toEqual([1, 5]);
  } finally {
    await server.close();
    await runtime.close();
  }
});

test('platformCheck on that worker: the GPU queues\' probes run their model where evaluation would, the CPU queue\'s on the CPU', async () => {
  const r = (await env.client.workflow.execute('platformCheck', { taskQueue: TASK_QUEUES.control, workflowId: `gpu-eval-pc-${randomUUID()}`, args: [{ gpuClass: 'h100', scheduleToStartTimeoutSeconds: 120 }] })) as PlatformCheckResult;
  const onnx = Object.fromEntries(r.queues.map((q) => [q.queue, q.ok ? { provider: q.result.onnx.provider, fellBack: q.result.onnx.fallback !== undefined } : q.error]));
  const gpu = ORT_CUDA ? { provider: 'cuda:0', fellBack: false } : { provider: 'cpu', fellBack: true };
  expect(onnx).toEqual({
    [TASK_QUEUES.control]: { provider: 'cpu', fellBack: false },
    [TASK_QUEUES.cpu]: { provider: 'cpu', fellBack: false },
    [TASK_QUEUES.gpu]: gpu,
    [`${TASK_QUEUES.gpu}-h100`]: gpu,
  });
});
