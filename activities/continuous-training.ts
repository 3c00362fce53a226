import type { Kysely } from 'kysely';
import type { ArtifactStore } from '../infra/artifacts';
import type { Config } from '../infra/config';
import type { Database } from '../infra/db/schema';
import {
  addLineageEdge,
  getArtifactByUri,
  getModelByName,
  acceptDataSchema,
  latestDataSchema,
  previousDataSpan,
  recordArtifact,
  registerModelVersion,
  saveDataSchema,
  setAlias,
  upsertDataSpan,
  upsertModel,
} from '../infra/db/repositories';
import type { OverrideField } from '../workflows/contracts/step-fix';
import type { FeatureDef, LabelDef, SplitDef, SliceDef, DatasetDef } from '../workflows/contracts/training-spec';
import { literal, withDuckDb } from './data/duck';
import { prepareData, type PreparedData } from './data/prepare';
import { PARQUET, snapshotDataset, type SnapshotRef } from './data/snapshot';
import { localArtifact, withTempDir } from './data/sources';
import { computeStatistics, inferSchema, schemaFingerprint, validateSpan, type DataSchema, type SpanStatistics, type ValidationReport } from './data/validate';
import { currentWorkflow, dataError, defineStep, type StepDeps } from './steps';
import { waitingOutOutages } from './dependency-outage';
import { evaluateModel, type Evaluation } from './training/evaluate';
import { stepPlacement } from './training/scoring-device';
import { validateModel, type Gates, type ModelValidation } from './training/gates';
import { signatureOf } from './training/scoring';
import { trainModel, type ArtifactRef, type TrainOutput } from './training/train';
import { TrainerRegistry } from './training/trainers';
import { ApplicationFailure } from '@temporalio/activity';

/**
 * The continuous-training steps, built from their dependencies (samples-typescript
 * `activities-dependency-injection`). Each is an idempotent step activity: content-addressed
 * artifacts, upserts on natural keys, and a model version keyed by run and model bytes.
 */

export interface TrainingDeps extends StepDeps {
  db: Kysely<Database>;
  artifacts: ArtifactStore;
  config: Config;
  trainers?: TrainerRegistry;
}

export interface ValidateDataInput {
  model: string;
  snapshot: Pick<SnapshotRef, 'uri' | 'sha256'>;
  features: FeatureDef[];
  label: LabelDef;
  split: SplitDef;
  /** The spec's `schemaChange`; absent means stop. */
  schemaChange?: 'stop' | 'accept';
}

export interface ValidateDataOutput {
  report: ValidationReport;
  schemaVersion: number;
  schemaCreated: boolean;
}

export interface RegisterInput {
  model: string;
  spec: unknown;
  snapshot: Pick<SnapshotRef, 'uri' | 'sha256' | 'rows'>;
  schemaVersion: number;
  data: PreparedData;
  trained: Pick<TrainOutput, 'model' | 'trainer' | 'rounds' | 'trainSeconds' | 'device'>;
  evaluation: Evaluation;
  validation: ModelValidation;
}

export interface RegisterOutput {
  modelVersionId: string;
  version: number;
  status: 'registered' | 'rejected';
  alias?: 'candidate';
}

export function createTrainingActivities(deps: TrainingDeps) {
  const trainers = deps.trainers ?? new TrainerRegistry({ commandTrainers: deps.config.commandTrainers, trainerEnv: deps.config.trainerEnv });
  return {
    /**
     * Before any step: is the spec's trainer registered here, and do its hyperparameters fit its
     * schema? Workers share one plugin configuration, so the control worker knows every trainer;
     * a misspelled name fails the run at once instead of after the data steps.
     */
    checkTrainer: async (input: { trainer: string; hyperparameters: Record<string, unknown> }): Promise<{ trainer: string; description?: string }> => {
      const trainer = trainers.get(input.trainer);
      if (!trainer) throw ApplicationFailure.nonRetryable(`trainer: ${JSON.stringify(input.trainer)} is not a registered trainer (registered: ${trainers.names().join(', ')})`, 'InvalidInput');
      const parsed = trainer.hyperparameters?.safeParse(input.hyperparameters);
      if (parsed && !parsed.success) {
        throw ApplicationFailure.nonRetryable(parsed.error.issues.map((i) => `hyperparameters${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message} (trainer ${trainer.name})`).join('; '), 'InvalidInput');
      }
      return { trainer: trainer.name, description: trainer.description };
    },
    snapshot: defineStep(deps, async (input: { model: string; dataset: DatasetDef }, call): Promise<SnapshotRef> => {
      const ref = await snapshotDataset(deps, input.dataset);
      await recordArtifact(deps.db, { uri: ref.uri, sha256: ref.sha256, bytes: ref.bytes, media_type: PARQUET, producing_step_run_id: call.stepRunId });
      return ref;
    }),

    validateData: defineStep(deps, async (input: ValidateDataInput): Promise<ValidateDataOutput> => {
      const known = await getModelByName(deps.db, input.model);
      const schemaRow = known ? await latestDataSchema(deps.db, known.id) : undefined;
      const prevRow = known ? await previousDataSpan(deps.db, known.id, input.snapshot.sha256) : undefined;
      const previous = prevRow?.statistics as SpanStatistics | undefined;
      const file = await localArtifact(deps.artifacts, input.snapshot, '.parquet');
      const stats = await withDuckDb((c) => computeStatistics(c, `read_parquet(${literal(file)})`, { previous, label: input.label }));
      const schema = schemaRow?.schema as DataSchema | undefined;
      const report = validateSpan({ stats, schema, previous, features: input.features, label: input.label, splitColumn: input.split.kind === 'time' ? input.split.column : undefined, schemaChange: input.schemaChange });
      if (prevRow) report.comparedWith = prevRow.snapshot_sha256;
      const changes = report.anomalies.filter((a) => a.schemaChange).map((a) => a.message);
      if (!report.ok) {
        const errors = report.anomalies.filter((a) => a.severity === 'error');
        if (known && schemaRow && errors.every((a) => a.schemaChange)) {
          // Only the columns changed: the new schema waits as a proposal for someone to accept.
          const inferred = inferSchema(stats);
          const proposed = await saveDataSchema(deps.db, { modelId: known.id, fingerprint: schemaFingerprint(inferred), schema: inferred, sourceSnapshotSha256: input.snapshot.sha256, status: 'proposed', changes: { from: schemaRow.version, changes } });
          throw dataError(
            `data validation failed: the data's schema changed from version ${schemaRow.version} (${changes.join('; ')}); nothing was trained. ` +
              `If the change is intended: mlops schema accept --model ${input.model} --version ${proposed.version}, then mlops resume; or set schemaChange: 'accept' in the spec`,
            { overrides: ['dataset'], action: `if the change is intended: mlops schema accept --model ${input.model} --version ${proposed.version}` },
            { report, proposedSchemaVersion: proposed.version },
          );
        }
        // The report travels with the failure; nothing is recorded for data that failed.
        throw dataError(`data validation failed: ${errors.map((a) => a.message).join('; ')}`, { overrides: [...new Set(errors.flatMap((a): OverrideField[] => a.fix ?? ['dataset']))] }, { report });
      }
      const model = known ?? (await upsertModel(deps.db, input.model));
      let version = schemaRow?.version;
      let created = false;
      if (!schemaRow || changes.length) {
        // The first span makes version 1; an accepted change (schemaChange: 'accept') the next one.
        const inferred = inferSchema(stats);
        const saved = await saveDataSchema(deps.db, { modelId: model.id, fingerprint: schemaFingerprint(inferred), schema: inferred, sourceSnapshotSha256: input.snapshot.sha256, ...(schemaRow ? { changes: { from: schemaRow.version, changes } } : {}) });
        if (saved.status === 'proposed') await acceptDataSchema(deps.db, model.id, `spec schemaChange: accept (${currentWorkflow().workflowId})`, saved.version);
        version = saved.version;
        created = true;
      }
      await upsertDataSpan(deps.db, { modelId: model.id, snapshotSha256: input.snapshot.sha256, schemaVersion: version!, rows: stats.rows, statistics: stats, report });
      return { report, schemaVersion: version!, schemaCreated: created };
    }),

    prepare: defineStep(
      deps,
      async (input: { snapshot: Pick<SnapshotRef, 'uri' | 'sha256'>; features: FeatureDef[]; label: LabelDef; split: SplitDef; sampleRows?: number; seed: number }, call): Promise<PreparedData> => {
        const file = await localArtifact(deps.artifacts, input.snapshot, '.parquet');
        const prepared = await withTempDir('prepare', (dir) => prepareData(deps.artifacts, file, input, dir));
        for (const [ref, mediaType] of [[prepared.train, PARQUET], [prepared.test, PARQUET], [prepared.baseline, 'application/json']] as const) {
          await recordArtifact(deps.db, { uri: ref.uri, sha256: ref.sha256, bytes: ref.bytes!, media_type: mediaType, producing_step_run_id: call.stepRunId });
        }
        return prepared;
      },
    ),

    // Training heartbeats itself, with its checkpoint in the details.
    train: defineStep(
      deps,
      async (input: Parameters<typeof trainModel>[1], call): Promise<TrainOutput> => {
        const out = await trainModel(deps, input);
        await waitingOutOutages('train: recording the model', () => recordArtifact(deps.db, { uri: out.model.uri, sha256: out.model.sha256, bytes: out.model.bytes, media_type: 'application/onnx', producing_step_run_id: call.stepRunId }));
        return out;
      },
      { keepAlive: false, waitOutOutages: false },
    ),

    evaluate: defineStep(deps, async (input: { model: ArtifactRef; trainerScores?: ArtifactRef; data: PreparedData; threshold: number; slices: SliceDef[] }, call): Promise<Evaluation> => {
      const evaluation = await evaluateModel(deps.artifacts, input, stepPlacement(deps.config.onnxDevice));
      await recordArtifact(deps.db, { uri: evaluation.report.uri, sha256: evaluation.report.sha256, bytes: evaluation.report.bytes!, media_type: 'application/json', producing_step_run_id: call.stepRunId });
      return evaluation;
    }),

    validateModel: defineStep(deps, async (input: { modelName: string; model: ArtifactRef; data: PreparedData; evaluation: Evaluation; gates: Gates }): Promise<ModelValidation> =>
      validateModel(deps, input),
    ),

    register: defineStep(deps, async (input: RegisterInput, call): Promise<RegisterOutput> => {
      const wf = currentWorkflow();
      const model = await upsertModel(deps.db, input.model);
      const onnx = await recordArtifact(deps.db, { uri: input.trained.model.uri, sha256: input.trained.model.sha256, bytes: input.trained.model.bytes, media_type: 'application/onnx', producing_step_run_id: null });
      const signature = signatureOf(input.data.features, input.data.task, input.data.classes);
      const accepted = input.validation.accepted;
      const mv = await registerModelVersion(deps.db, {
        modelId: model.id,
        // Same workflow, same model bytes → same version, whatever retries or resets happen.
        idempotencyKey: `${wf.workflowId}/${input.trained.model.sha256}`,
        status: accepted ? 'registered' : 'rejected',
        metrics: {
          ...input.evaluation.metrics,
          slices: input.evaluation.slices,
          parity: input.evaluation.parity,
          baseline: input.evaluation.baseline,
          predictionHistogram: input.evaluation.predictionHistogram,
          ...(input.evaluation.task === 'regression' ? { task: 'regression', predictionEdges: input.evaluation.predictionEdges } : {}),
          ...(input.evaluation.task === 'multiclass' ? { task: 'multiclass', classes: input.evaluation.classes, prior: input.evaluation.prior } : {}),
          champion: input.validation.champion,
          checks: input.validation.checks,
          infra: input.validation.infra,
          lineage: {
            snapshot: input.snapshot,
            schemaVersion: input.schemaVersion,
            codeVersion: deps.codeVersion,
            trainer: input.trained.trainer,
            rounds: input.trained.rounds,
            trainSeconds: input.trained.trainSeconds,
            device: input.trained.device,
            // Where onnxruntime scored the test split (`cuda:<index>`, or `cpu` with the reason CUDA was not had).
            ...(input.evaluation.scoredOn ? { evaluatedOn: input.evaluation.scoredOn } : {}),
            baseline: input.data.baseline,
            train: input.data.train,
            test: input.data.test,
            evaluationReport: input.evaluation.report,
            spec: input.spec,
            workflowId: wf.workflowId,
          },
        },
        onnxArtifactId: onnx.id,
        inputSignature: signature.inputs,
        outputSignature: signature.outputs,
        trainingRunId: call.ctx.pipelineRunId || null,
        rejectionReasons: accepted ? null : input.validation.reasons,
      });
      const to = { kind: 'model_version', id: mv.id };
      const snapshotArtifact = await getArtifactByUri(deps.db, input.snapshot.uri);
      if (snapshotArtifact) await addLineageEdge(deps.db, { kind: 'artifact', id: snapshotArtifact.id }, to, 'trained-on');
      await addLineageEdge(deps.db, { kind: 'artifact', id: onnx.id }, to, 'model-file');
      await addLineageEdge(deps.db, { kind: 'data_schema', id: `${model.id}:v${input.schemaVersion}` }, to, 'validated-against');
      await addLineageEdge(deps.db, { kind: 'code_version', id: deps.codeVersion }, to, 'built-by');
      await addLineageEdge(deps.db, { kind: 'workflow', id: wf.workflowId }, to, 'produced-by');
      if (accepted) await setAlias(deps.db, model.id, 'candidate', mv.id, { kind: 'candidate', movedBy: wf.workflowId, reason: 'passed the training gates' });
      return { modelVersionId: mv.id, version: mv.version, status: mv.status, ...(accepted ? { alias: 'candidate' as const } : {}) };
    }),
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
