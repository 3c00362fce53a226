import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Typed view of the metadata store and model registry. Column names are the SQL names. */

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T = unknown> = ColumnType<T, string, string>;

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cached' | 'paused';
export type Alias = 'candidate' | 'staging' | 'production';
export const ALIASES: readonly Alias[] = ['candidate', 'staging', 'production'];

export interface PipelineRunTable {
  id: Generated<string>;
  workflow_id: string;
  run_id: string;
  pipeline: string;
  model_name: string | null;
  spec: Json;
  status: string;
  code_version: string | null;
  started_at: Timestamp;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  result: Json | null;
}

export interface StepRunTable {
  id: Generated<string>;
  pipeline_run_id: string;
  step_name: string;
  status: StepStatus;
  attempts: ColumnType<number, number | undefined, number>;
  cache_key: string | null;
  inputs: Json;
  outputs: Json | null;
  error: string | null;
  worker: string | null;
  started_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  finished_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** The latest attempt's run time. */
  duration_ms: ColumnType<number | null, number | null | undefined, number | null>;
  updated_at: Timestamp;
}

export interface ArtifactTable {
  id: Generated<string>;
  uri: string;
  sha256: string;
  bytes: ColumnType<string, number | string, number | string>;
  media_type: string;
  producing_step_run_id: string | null;
  created_at: Timestamp;
}

export interface LineageEdgeTable {
  id: Generated<string>;
  from_kind: string;
  from_id: string;
  to_kind: string;
  to_id: string;
  relation: string;
  created_at: Timestamp;
}

export interface ModelTable {
  id: Generated<string>;
  name: string;
  description: string | null;
  created_at: Timestamp;
}

export interface ModelVersionTable {
  id: Generated<string>;
  model_id: string;
  version: number;
  status: 'registered' | 'rejected';
  idempotency_key: string;
  metrics: Json<Record<string, unknown>>;
  onnx_artifact_id: string | null;
  input_signature: Json;
  output_signature: Json;
  training_run_id: string | null;
  rejection_reasons: Json<string[]> | null;
  created_at: Timestamp;
}

export interface ModelAliasTable {
  model_id: string;
  alias: Alias;
  model_version_id: string;
  updated_at: Timestamp;
}

/** How an alias came to point at a version (`kind`) and how that tenure ended (`ended_by`). */
export type AliasMoveKind = 'set' | 'candidate' | 'promote' | 'rollback' | 'revert' | 'manual';

/** Append-only: one row per tenure of a version in an alias. The open row has no `valid_until`. */
export interface AliasHistoryTable {
  id: Generated<string>;
  model_id: string;
  alias: Alias;
  model_version_id: string;
  previous_version_id: string | null;
  valid_from: Timestamp;
  valid_until: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  kind: AliasMoveKind;
  ended_by: AliasMoveKind | null;
  moved_by: string | null;
  reason: string | null;
  details: Json<Record<string, unknown>>;
}

export interface DeploymentTable {
  id: Generated<string>;
  model_version_id: string;
  slot: string;
  endpoint: string | null;
  status: string;
  weight: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MonitoringReportTable {
  id: Generated<string>;
  model_id: string;
  model_version_id: string | null;
  kind: string;
  window_start: Timestamp;
  window_end: Timestamp;
  figures: Json<Record<string, unknown>>;
  breach: boolean;
  created_at: Timestamp;
}

export interface PredictionLogTable {
  request_id: string;
  model_id: string;
  model_version_id: string;
  ts: Timestamp;
  inputs: Json;
  outputs: Json;
  latency_ms: number;
  label: Json | null;
  labeled_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface DataSchemaTable {
  id: Generated<string>;
  model_id: string;
  version: number;
  fingerprint: string;
  schema: Json;
  source_snapshot_sha256: string;
  /** `proposed`: found in a span that stopped its run; it counts once accepted. */
  status: ColumnType<'accepted' | 'proposed', 'accepted' | 'proposed' | undefined, 'accepted' | 'proposed'>;
  /** What differs from the version before (a proposal's reason). */
  changes: Json | null;
  accepted_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  accepted_by: string | null;
  created_at: Timestamp;
}

export interface DataSpanTable {
  id: Generated<string>;
  model_id: string;
  snapshot_sha256: string;
  schema_version: number;
  rows: ColumnType<string, number | string, number | string>;
  statistics: Json;
  report: Json;
  created_at: Timestamp;
}

export interface ServingTrafficTable {
  model_id: string;
  stable_version_id: string | null;
  canary_version_id: string | null;
  canary_weight: number;
  shadow_version_id: string | null;
  /** From serving_generation_seq at every change of this model's traffic or version set. */
  generation: ColumnType<string, number | string, number | string>;
  updated_at: Timestamp;
  /** The workflow id that changed it, or 'admin' / 'migration'. */
  updated_by: string;
}

export interface ServingVersionTable {
  model_id: string;
  model_version_id: string;
  added_at: Timestamp;
  added_by: string;
}

export interface ModelServerTable {
  id: string;
  endpoint: string;
  pid: number | null;
  heartbeat_ms: number;
  started_at: Timestamp;
  seen_at: Timestamp;
  stopped_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  ready: boolean;
  /** `{"<model_id>": generation}`: the generation this server serves per model. */
  applied: Json<Record<string, number>>;
  missing: Json<string[]>;
  load_errors: Json<Array<{ model: string; version: number; message: string; permanent: boolean }>>;
}

export interface ServingErrorTable {
  server_id: string;
  model_version_id: string;
  role: string;
  /** The second the errors happened in. */
  bucket: Timestamp;
  count: number;
}

export interface Database {
  data_schemas: DataSchemaTable;
  data_spans: DataSpanTable;
  pipeline_runs: PipelineRunTable;
  step_runs: StepRunTable;
  artifacts: ArtifactTable;
  lineage_edges: LineageEdgeTable;
  models: ModelTable;
  model_versions: ModelVersionTable;
  model_aliases: ModelAliasTable;
  alias_history: AliasHistoryTable;
  deployments: DeploymentTable;
  monitoring_reports: MonitoringReportTable;
  prediction_log: PredictionLogTable;
  serving_traffic: ServingTrafficTable;
  serving_versions: ServingVersionTable;
  model_servers: ModelServerTable;
  serving_errors: ServingErrorTable;
}

export type PipelineRun = Selectable<PipelineRunTable>;
export type NewPipelineRun = Insertable<PipelineRunTable>;
export type StepRun = Selectable<StepRunTable>;
export type StepRunUpdate = Updateable<StepRunTable>;
export type Artifact = Selectable<ArtifactTable>;
export type NewArtifact = Insertable<ArtifactTable>;
export type LineageEdge = Selectable<LineageEdgeTable>;
export type Model = Selectable<ModelTable>;
export type ModelVersion = Selectable<ModelVersionTable>;
export type ModelAlias = Selectable<ModelAliasTable>;
export type AliasHistoryRow = Selectable<AliasHistoryTable>;
export type Deployment = Selectable<DeploymentTable>;
export type MonitoringReport = Selectable<MonitoringReportTable>;
export type PredictionLogRow = Selectable<PredictionLogTable>;
export type NewPrediction = Insertable<PredictionLogTable>;
export type ServingTraffic = Selectable<ServingTrafficTable>;
export type ModelServer = Selectable<ModelServerTable>;
