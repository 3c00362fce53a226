import os from 'node:os';
import { activityInfo, log } from '@temporalio/activity';
import * as ort from 'onnxruntime-node';
import type { OnnxDevice } from '../infra/onnx-device';
import type { Kysely } from 'kysely';
import type { ArtifactStore } from '../infra/artifacts';
import { readAll } from '../infra/artifacts';
import type { Database } from '../infra/db/schema';
import { finishPipelineRun, getPipelineRun, listStepRuns, recordArtifact, upsertPipelineRun, upsertStepRun } from '../infra/db/repositories';
import { logisticModel } from '../infra/onnx/model';
import { currentGpu } from './gpu-context';
import { sha256Hex } from './hash';
import { stepPlacement } from './training/scoring-device';

/** The workflow that scheduled this activity (our activities always run under one). */
function workflowOf(info: ReturnType<typeof activityInfo>): { workflowId: string; runId: string } {
  if (!info.workflowExecution) throw new Error(`activity ${info.activityType} must be scheduled by a workflow`);
  return info.workflowExecution;
}

export interface WorkerIdentity {
  /** Temporal worker identity, e.g. `mlops-cpu@host:pid`. */
  identity: string;
  queue: string;
}

export interface PlatformDeps {
  db: Kysely<Database>;
  artifacts: ArtifactStore;
  worker: WorkerIdentity;
  /** Where a GPU worker runs ONNX models (MLOPS_ONNX_DEVICE): the probe's model runs there, as evaluation's does. */
  config?: { onnxDevice?: OnnxDevice };
}

export interface ProbeInput {
  /** The platform check's workflow id: every probe of one check writes under it. */
  checkId: string;
  queue: string;
}

export interface ProbeResult {
  queue: string;
  worker: string;
  host: string;
  pid: number;
  device: string;
  artifact: { uri: string; sha256: string; bytes: number; readBackSha256: string; rowId: string };
  metadata: { pipelineRunId: string; stepRunId: string; stepsVisible: number };
  /** `provider`: where onnxruntime ran it, `cpu` or `cuda:<index>`; `fallback`: why not CUDA, when the worker is set for it and it could not be had. */
  onnx: { uri: string; sha256: string; input: number[]; output: number; expected: number; provider: string; fallback?: string };
  ms: number;
}

/**
 * Activities that prove a worker's wiring: artifact store, metadata store and ONNX runtime.
 * Everything written is keyed by the check id and queue, so a retry rewrites the same rows.
 */
export function createPlatformActivities(deps: PlatformDeps) {
  return {
    async platformProbe(input: ProbeInput): Promise<ProbeResult> {
      const started = performance.now();
      const info = activityInfo();
      const wf = workflowOf(info);
      const gpu = currentGpu();
      const device = gpu ? `gpu ${gpu.gpu.index} (${gpu.gpu.name}, CUDA_VISIBLE_DEVICES=${gpu.cudaVisibleDevices})` : 'cpu';

      // Metadata: one pipeline run per check, one step row per queue.
      const run = await upsertPipelineRun(deps.db, {
        workflowId: wf.workflowId,
        runId: wf.runId,
        pipeline: 'platformCheck',
        status: 'running',
        spec: { checkId: input.checkId },
      });

      // Artifact: deterministic bytes, stored by content, read back by hash.
      const payload = Buffer.from(JSON.stringify({ check: input.checkId, queue: input.queue, kind: 'platform-probe' }));
      const put = await deps.artifacts.putContent(payload, { mediaType: 'application/json' });
      const readBack = await readAll(await deps.artifacts.get(deps.artifacts.contentKey(put.sha256)));
      const readBackSha256 = sha256Hex(readBack);
      if (readBackSha256 !== put.sha256) throw new Error(`artifact ${put.uri} read back with sha256 ${readBackSha256}, wrote ${put.sha256}`);

      // ONNX: build a tiny model, store it, load it back from the store and run it.
      const weights = [0.5, -1.25, 2];
      const bias = 0.1;
      const x = [1, 2, 0.5];
      const model = await deps.artifacts.putContent(logisticModel(weights, bias), { mediaType: 'application/onnx' });
      const modelBytes = await readAll(await deps.artifacts.get(model.key));
      const { session, device: provider, fallback } = await stepPlacement(deps.config?.onnxDevice)(modelBytes);
      let output: number;
      try {
        const result = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, x.length]) });
        output = Number((result.probability!.data as Float32Array)[0]);
      } finally {
        await session.release();
      }
      const expected = 1 / (1 + Math.exp(-(x.reduce((s, v, i) => s + v * weights[i]!, 0) + bias)));
      if (Math.abs(output - expected) > 1e-5) throw new Error(`ONNX output ${output} != expected ${expected}`);

      const step = await upsertStepRun(deps.db, {
        pipelineRunId: run.id,
        stepName: `probe:${input.queue}`,
        status: 'succeeded',
        attempts: info.attempt,
        inputs: input,
        outputs: { artifact: put.uri, model: model.uri },
        worker: deps.worker.identity,
      });
      const artifactRow = await recordArtifact(deps.db, {
        uri: put.uri,
        sha256: put.sha256,
        bytes: put.bytes,
        media_type: put.mediaType,
        producing_step_run_id: step.id,
      });
      await recordArtifact(deps.db, {
        uri: model.uri,
        sha256: model.sha256,
        bytes: model.bytes,
        media_type: model.mediaType,
        producing_step_run_id: step.id,
      });
      // Read back through a fresh query: the row is really there, not just returned.
      const again = await getPipelineRun(deps.db, wf.workflowId, wf.runId);
      const steps = again ? await listStepRuns(deps.db, again.id) : [];
      if (!steps.some((s) => s.id === step.id)) throw new Error(`step row ${step.id} not found after writing it`);

      const ms = Math.round(performance.now() - started);
      log.info('platform probe done', { queue: input.queue, device, ms });
      return {
        queue: input.queue,
        worker: deps.worker.identity,
        host: os.hostname(),
        pid: process.pid,
        device,
        artifact: { uri: put.uri, sha256: put.sha256, bytes: put.bytes, readBackSha256, rowId: artifactRow.id },
        metadata: { pipelineRunId: run.id, stepRunId: step.id, stepsVisible: steps.length },
        onnx: { uri: model.uri, sha256: model.sha256, input: x, output, expected, provider, ...(fallback ? { fallback } : {}) },
        ms,
      };
    },

    async finishPlatformCheck(input: { status: 'succeeded' | 'failed'; summary: unknown }): Promise<void> {
      const wf = workflowOf(activityInfo());
      const run = await upsertPipelineRun(deps.db, {
        workflowId: wf.workflowId,
        runId: wf.runId,
        pipeline: 'platformCheck',
        status: input.status,
      });
      await finishPipelineRun(deps.db, run.id, input.status, input.summary);
    },
  };
}

export type PlatformActivities = ReturnType<typeof createPlatformActivities>;
