import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { z } from 'zod';
import { keyRingFromEnv, type CodecKeyRing } from './codec';
import { ConfigError } from './errors';
import { validateArtifactKey } from './artifacts/keys';
import { resolveTaskQueues, type TaskQueues } from '../workflows/contracts/task-queues';
import { ONNX_DEVICES, type OnnxDevice } from './onnx-device';
import { PROJECT_ROOT, defaultDataRoots, defaultProjectBinDir, defaultStateDir, defaultToolCacheDir } from './paths';

/**
 * Every environment variable the project reads, parsed once with zod. The README's
 * configuration table is generated from the same descriptions (see `CONFIG_DOCS`).
 * Temporal connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*,
 * TEMPORAL_API_KEY, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE) are read by
 * `@temporalio/envconfig`, the same way the Temporal CLI reads them.
 */

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const boolFlag = z
  .string()
  .trim()
  .toLowerCase()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v === '') return false;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    ctx.addIssue({ code: 'custom', message: `expected true/false, got ${JSON.stringify(v)}` });
    return z.NEVER;
  });

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** A PostgreSQL schema name we accept: a lowercase identifier that never needs escaping, ≤ 63 bytes. */
export const DB_SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
/** The PostgreSQL schema our tables (and kysely's migration tables) live in by default. */
export const DEFAULT_DB_SCHEMA = 'mlops';

export type ArtifactRoot =
  | { kind: 's3'; bucket: string; prefix: string; uri: string }
  | { kind: 'local'; dir: string; uri: string };

export function parseArtifactRoot(value: string): ArtifactRoot {
  if (value.startsWith('s3://')) {
    const rest = value.slice('s3://'.length).replace(/\/+$/, '');
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? '' : rest.slice(slash + 1);
    if (!S3_BUCKET.test(bucket) || bucket.includes('..')) {
      throw new ConfigError(`ARTIFACT_ROOT: ${JSON.stringify(bucket)} is not a valid S3 bucket name`);
    }
    if (prefix) {
      try {
        validateArtifactKey(prefix);
      } catch (err) {
        throw new ConfigError(`ARTIFACT_ROOT: prefix ${JSON.stringify(prefix)} is not allowed: ${(err as Error).message}`);
      }
    }
    return { kind: 's3', bucket, prefix, uri: `s3://${bucket}${prefix ? `/${prefix}` : ''}` };
  }
  let dir: string;
  if (value.startsWith('file://')) {
    try {
      dir = fileURLToPath(value);
    } catch (err) {
      throw new ConfigError(`ARTIFACT_ROOT: ${(err as Error).message}`);
    }
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new ConfigError(`ARTIFACT_ROOT: unsupported scheme in ${JSON.stringify(value)} (use s3://bucket/prefix or a local folder)`);
  } else {
    dir = value;
  }
  if (dir.split(/[\\/]/).includes('..')) {
    throw new ConfigError(`ARTIFACT_ROOT: ${JSON.stringify(value)} must not contain '..'`);
  }
  const abs = path.resolve(dir);
  return { kind: 'local', dir: abs, uri: pathToFileURL(abs).href };
}

const envSchema = z.object({
  MLOPS_STATE_DIR: optionalString,
  MLOPS_TOOLS_DIR: optionalString,
  MLOPS_TOOLS_CACHE: optionalString,
  TEMPORAL_CLI_PATH: optionalString,
  MINIO_SERVER_PATH: optionalString,
  DATABASE_URL: optionalString.refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), {
    message: 'must be a postgres:// or postgresql:// URL',
  }),
  MLOPS_LOCAL_POSTGRES: optionalString,
  MLOPS_DATABASE_NAME: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier')
    .default('mlops'),
  MLOPS_DB_SCHEMA: z
    .string()
    .trim()
    .transform((v) => (v === '' ? undefined : v))
    .optional()
    .refine((v) => v === undefined || DB_SCHEMA_PATTERN.test(v), {
      message: 'must be a lowercase SQL identifier (a-z, 0-9, _; not starting with a digit; at most 63 characters)',
    })
    .transform((v) => v ?? DEFAULT_DB_SCHEMA),
  ARTIFACT_ROOT: optionalString,
  S3_ENDPOINT: optionalString.refine((v) => v === undefined || /^https?:\/\/[^/]+\/?$/.test(v), {
    message: 'must look like http://host:port or https://host',
  }),
  AWS_ACCESS_KEY_ID: optionalString,
  AWS_SECRET_ACCESS_KEY: optionalString,
  AWS_REGION: z.string().default('us-east-1'),
  MLOPS_GPU_CLASS: optionalString,
  MLOPS_ALLOW_CPU: boolFlag,
  MLOPS_CODE_VERSION: optionalString,
  MLOPS_DATA_ROOTS: optionalString,
  MLOPS_COMMAND_TRAINERS: optionalString,
  MLOPS_TRAINER_ENV: optionalString,
  MLOPS_TRAIN_THREADS: optionalString.refine((v) => v === undefined || (/^\d{1,3}$/.test(v) && Number(v) >= 1), { message: 'must be a whole number of threads, at least 1' }),
  MLOPS_PYTHON: optionalString,
  MLOPS_ONNX_DEVICE: z.enum(ONNX_DEVICES).optional(),
  MLOPS_MODEL_SERVER_URL: optionalString.refine((v) => v === undefined || /^https?:\/\/[^/]+\/?$/.test(v), { message: 'must look like http://host:port' }),
  MLOPS_ADMIN_TOKEN: optionalString,
  MLOPS_WEBHOOK_TOKEN: optionalString,
  MLOPS_WEBHOOK_PORT: optionalString.refine((v) => v === undefined || (/^\d{1,5}$/.test(v) && Number(v) <= 65535), { message: 'must be a port number (0–65535)' }),
  MLOPS_WEBHOOK_HOST: optionalString,
  MLOPS_METRICS_PORT: optionalString.refine((v) => v === undefined || v === 'off' || (/^\d{1,5}$/.test(v) && Number(v) <= 65535), { message: 'must be a port number (0–65535) or off' }),
  MLOPS_METRICS_HOST: optionalString,
  MLOPS_WORKER_DEPLOYMENT: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/.test(v), { message: 'must be letters, digits, _ and - (no dots), at most 100 characters' }),
  MLOPS_WORKER_BUILD_ID: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$/.test(v), { message: 'must be letters, digits and _ . + -, at most 255 characters' }),
  MLOPS_CODEC_KEYS: optionalString,
  MLOPS_CODEC_KEYS_FILE: optionalString,
  MLOPS_CODEC_SERVER_TOKEN: optionalString,
  MLOPS_CODEC_SERVER_PORT: optionalString.refine((v) => v === undefined || (/^\d{1,5}$/.test(v) && Number(v) <= 65535), { message: 'must be a port number (0–65535)' }),
  MLOPS_CODEC_SERVER_HOST: optionalString,
  MLOPS_CODEC_CORS_ORIGINS: optionalString,
  MLOPS_UI_PORT: optionalString.refine((v) => v === undefined || (/^\d{1,5}$/.test(v) && Number(v) <= 65535), { message: 'must be a port number (0–65535)' }),
  MLOPS_UI_HOST: optionalString,
  MLOPS_TEMPORAL_UI_URL: optionalString.refine((v) => v === undefined || /^https?:\/\/[^\s]+$/.test(v), { message: 'must look like http://host:port' }),
  MLOPS_TASK_QUEUE_PREFIX: optionalString.refine((v) => v === undefined || /^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$/.test(v), { message: 'must be letters, digits and . _ - (e.g. acme-ml)' }),
});

export type Env = z.infer<typeof envSchema>;

export interface S3Settings {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface Config {
  stateDir: string;
  projectBinDir: string;
  toolCacheDir: string;
  temporalCliPath?: string;
  minioServerPath?: string;
  databaseUrl?: string;
  /** Where to look for a local PostgreSQL when DATABASE_URL is unset; `undefined` = don't. */
  localPostgresUrl?: string;
  databaseName: string;
  /** PostgreSQL schema holding every table of ours, kysely's migration tables included. */
  databaseSchema: string;
  artifactRoot: ArtifactRoot;
  s3?: S3Settings;
  gpuClass?: string;
  allowCpu: boolean;
  codeVersion?: string;
  /** Folders a `file://` dataset URI may point into. */
  dataRoots: string[];
  /** Registered external trainers: name → argv (workflow inputs name one, never give a command). */
  commandTrainers: Record<string, string[]>;
  /** Further worker variables a command trainer inherits (it gets none of the others). */
  trainerEnv: string[];
  /** CPU threads one built-in training step may use (MLOPS_TRAIN_THREADS). */
  trainThreads: number;
  /** Where a GPU worker's evaluation and the model server run ONNX models (MLOPS_ONNX_DEVICE; default cpu). */
  onnxDevice?: OnnxDevice;
  /** The model server the deployment activities drive through its admin API. */
  modelServer: { url: string; adminToken?: string };
  /** Our task queues: `<prefix>-control`, `<prefix>-cpu`, `<prefix>-gpu` (MLOPS_TASK_QUEUE_PREFIX, default mlops). */
  taskQueues: TaskQueues;
  /** The trigger webhook (`npm run webhook`); it refuses to start without a token. */
  webhook: { token?: string; port: number; host: string };
  /** A worker's /metrics; `off` when MLOPS_METRICS_PORT=off. */
  metrics: { port: number; host: string } | 'off';
  /** The registry web page (`mlops ui`, the dev stack). */
  ui: { port: number; host: string };
  /** The Temporal Web UI the registry page links every workflow into. */
  temporalUiUrl: string;
  /** Worker Versioning (MLOPS_WORKER_DEPLOYMENT / MLOPS_WORKER_BUILD_ID); undefined: unversioned workers. */
  workerDeployment?: { name: string; buildId?: string };
  /** Payload encryption keys (MLOPS_CODEC_KEYS / MLOPS_CODEC_KEYS_FILE); undefined: payloads in plain text. */
  codecKeys?: CodecKeyRing;
  /** `npm run codec-server`: decodes for the Temporal CLI and Web UI. */
  codecServer: { token?: string; port: number; host: string; corsOrigins: string[] };
  /** OpenTelemetry tracing from the standard OTEL_* variables; undefined: off (the default). */
  tracing?: TracingSettings;
}

/** Where and how spans are exported: OTLP over HTTP. */
export interface TracingSettings {
  /** The OTLP/HTTP traces URL (`…/v1/traces`). */
  url: string;
  protocol: TracingProtocol;
  /** OTEL_SERVICE_NAME; each entry point has its own default (the worker, the CLI, the model server). */
  serviceName?: string;
  /** OTEL_RESOURCE_ATTRIBUTES. */
  resourceAttributes: Record<string, string>;
}

export const TRACING_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type TracingProtocol = (typeof TRACING_PROTOCOLS)[number];

// The OpenTelemetry spellings (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
// only `true` and `false`, in any case.
const otelBool = z
  .string()
  .trim()
  .toLowerCase()
  .optional()
  .refine((v) => v === undefined || v === '' || v === 'true' || v === 'false', { message: 'expected true or false' })
  .transform((v) => v === 'true');

const otlpUrl = optionalString.refine((v) => v === undefined || /^https?:\/\/[^\s/]+(\/\S*)?$/.test(v), { message: 'must be an http:// or https:// URL (OTLP over HTTP, e.g. http://127.0.0.1:4318)' });

const tracingSwitchSchema = z.object({
  OTEL_SDK_DISABLED: otelBool,
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl,
});

const tracesExporterSchema = z.object({
  OTEL_TRACES_EXPORTER: optionalString
    .transform((v) => (v ?? 'otlp').split(',').map((e) => e.trim()))
    .refine((list) => list.every((e) => e === 'otlp' || e === 'none'), { message: 'only otlp (or none, for no traces) is supported' }),
});

const otlpProtocol = optionalString.refine((v) => v === undefined || (TRACING_PROTOCOLS as readonly string[]).includes(v), {
  message: `must be ${TRACING_PROTOCOLS.join(' or ')} (OTLP over HTTP; grpc is not supported, send to the collector's HTTP port, 4318)`,
});

const tracingSchema = z.object({
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol,
  OTEL_SERVICE_NAME: optionalString,
  OTEL_RESOURCE_ATTRIBUTES: optionalString,
});

/**
 * Tracing from the standard OpenTelemetry variables: on when OTEL_EXPORTER_OTLP_ENDPOINT (the
 * collector's base URL, `/v1/traces` appended) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the traces
 * URL as is) is set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Past the
 * switches, the variables are checked only when it is on: an OTEL_* meant for another program
 * on the machine (a grpc protocol, a zipkin exporter) stops none of ours while ours export nothing.
 */
export function tracingFromEnv(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  const parse = <T>(schema: z.ZodType<T>): T => {
    const parsed = schema.safeParse(env);
    if (!parsed.success) throw new ConfigError(`invalid configuration: ${formatIssues(parsed.error)}`);
    return parsed.data;
  };
  const s = parse(tracingSwitchSchema);
  const url = s.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (s.OTEL_EXPORTER_OTLP_ENDPOINT && `${s.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  if (s.OTEL_SDK_DISABLED || !url) return undefined;
  if (parse(tracesExporterSchema).OTEL_TRACES_EXPORTER.includes('none')) return undefined;
  const e = parse(tracingSchema);
  return {
    url,
    protocol: (e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf') as TracingProtocol,
    serviceName: e.OTEL_SERVICE_NAME,
    resourceAttributes: parseResourceAttributes(e.OTEL_RESOURCE_ATTRIBUTES),
  };
}

/** `key=value,key2=value2`, values percent-encoded (the W3C Baggage octet rules the spec points to). */
function parseResourceAttributes(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of (value ?? '').split(',')) {
    if (!entry.trim()) continue;
    const eq = entry.indexOf('=');
    const key = eq === -1 ? '' : entry.slice(0, eq).trim();
    if (!key) throw new ConfigError(`OTEL_RESOURCE_ATTRIBUTES: ${JSON.stringify(entry.trim())} is not key=value`);
    try {
      out[key] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(`OTEL_RESOURCE_ATTRIBUTES: the value of ${key} is not valid percent-encoding`);
    }
  }
  return out;
}

const commandTrainersSchema = z.record(
  z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'trainer names are lowercase letters, digits and dashes'),
  z.array(z.string().min(1)).min(1, 'needs the command to run'),
);

/**
 * The Python that runs the example trainer and the reference checks: MLOPS_PYTHON, else the
 * system interpreter — Debian's python3-sklearn & co. install there, and a pyenv or virtualenv
 * `python3` earlier on PATH would not see them.
 */
export function pythonInterpreter(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MLOPS_PYTHON) return env.MLOPS_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** The example trainers shipped with the project (examples/trainers). */
export function builtinCommandTrainers(env: NodeJS.ProcessEnv = process.env): Record<string, string[]> {
  const example = (file: string) => [pythonInterpreter(env), path.join(PROJECT_ROOT, 'examples', 'trainers', file)];
  return { 'sklearn-logreg': example('sklearn_logreg.py'), 'torch-mlp': example('torch_mlp.py') };
}

function parseCommandTrainers(value: string | undefined, env: NodeJS.ProcessEnv): Record<string, string[]> {
  const BUILTIN_COMMAND_TRAINERS = builtinCommandTrainers(env);
  if (!value) return { ...BUILTIN_COMMAND_TRAINERS };
  let raw: unknown;
  try {
    raw = JSON.parse(value.startsWith('{') ? value : readFileSync(value, 'utf8'));
  } catch (err) {
    throw new ConfigError(`MLOPS_COMMAND_TRAINERS: not a JSON object or a readable JSON file: ${(err as Error).message}`);
  }
  const parsed = commandTrainersSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`MLOPS_COMMAND_TRAINERS: ${formatIssues(parsed.error)}`);
  return { ...BUILTIN_COMMAND_TRAINERS, ...parsed.data };
}

export const CONFIG_DOCS: Array<{ name: string; default: string; meaning: string }> = [
  { name: 'TEMPORAL_ADDRESS', default: '127.0.0.1:7233 (`npm run dev`: the dev server it starts)', meaning: 'Temporal frontend gRPC address (read by @temporalio/envconfig, like the Temporal CLI)' },
  { name: 'TEMPORAL_NAMESPACE', default: 'default', meaning: 'Temporal namespace' },
  { name: 'TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH / TEMPORAL_TLS_SERVER_CA_CERT_PATH', default: 'unset', meaning: 'mTLS files for the Temporal connection' },
  { name: 'TEMPORAL_API_KEY', default: 'unset', meaning: 'API key for Temporal Cloud (enables TLS)' },
  { name: 'TEMPORAL_PROFILE / TEMPORAL_CONFIG_FILE', default: 'default / ~/.config/temporalio/temporal.toml', meaning: 'Temporal client config profile and file' },
  { name: 'TEMPORAL_CLI_PATH', default: 'PATH, then .bin/, then built', meaning: '`temporal` binary used for the dev server' },
  { name: 'MINIO_SERVER_PATH', default: 'PATH, then .bin/, then built', meaning: '`minio` binary used for a local S3 server' },
  { name: 'DATABASE_URL', default: 'local PostgreSQL on 127.0.0.1:5432, else embedded PGlite', meaning: 'PostgreSQL for the metadata store and model registry' },
  { name: 'MLOPS_LOCAL_POSTGRES', default: 'postgres://postgres@127.0.0.1:5432/postgres', meaning: 'server probed when DATABASE_URL is unset (its database MLOPS_DATABASE_NAME is created if missing); `off` skips it' },
  { name: 'MLOPS_DATABASE_NAME', default: 'mlops', meaning: 'database created on the local server' },
  { name: 'MLOPS_DB_SCHEMA', default: 'mlops', meaning: 'PostgreSQL schema (created if missing) that holds every table of the metadata store, kysely’s migration tables included, so they never mix with tables in `public`' },
  { name: 'ARTIFACT_ROOT', default: 'file://<repo>/.state/artifacts', meaning: 'artifact store: `s3://bucket/prefix` or a local folder' },
  { name: 'S3_ENDPOINT', default: 'AWS S3', meaning: 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 for MinIO' },
  { name: 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY', default: 'required with s3://', meaning: 'S3 credentials' },
  { name: 'AWS_REGION', default: 'us-east-1', meaning: 'S3 region' },
  { name: 'MLOPS_GPU_CLASS', default: 'from nvidia-smi', meaning: 'GPU class a GPU worker serves (`mlops-gpu-<class>`)' },
  { name: 'MLOPS_ALLOW_CPU', default: 'false', meaning: 'let a GPU worker start without GPUs (same as `--allow-cpu`)' },
  { name: 'MLOPS_STATE_DIR', default: '<repo>/.state', meaning: 'dev server database, PGlite data, local artifacts, MinIO data' },
  { name: 'MLOPS_TOOLS_CACHE', default: '~/.cache/temporal-mlops/bin', meaning: 'where built `temporal`/`minio` binaries are cached across clones' },
  { name: 'MLOPS_TOOLS_DIR', default: '<repo>/.bin', meaning: 'project-local bin folder' },
  { name: 'MLOPS_LOG_LEVEL', default: 'INFO', meaning: 'Temporal SDK log level' },
  { name: 'MLOPS_NVIDIA_SMI', default: 'nvidia-smi', meaning: 'the nvidia-smi executable the GPU worker runs' },
  { name: 'MLOPS_CODE_VERSION', default: 'git HEAD (+dirty when files differ), else package version', meaning: 'code version recorded in lineage and step-cache keys; Docker images get it as a build argument (they carry no .git)' },
  { name: 'MLOPS_DATA_ROOTS', default: '<repo> and the OS temp folder', meaning: 'comma-separated folders that `file://` dataset URIs may point into' },
  { name: 'MLOPS_SERVE_PORT / MLOPS_SERVE_HOST', default: '8000 / 127.0.0.1', meaning: 'where `npm run serve` (the model server) listens' },
  { name: 'MLOPS_SERVE_GRPC_PORT', default: 'unset (no gRPC); 8081 in `npm run dev` and the compose file', meaning: 'the port (on MLOPS_SERVE_HOST) where `npm run serve` also serves the OIP gRPC API (`inference.GRPCInferenceService`); 0 picks a free one, `off` none' },
  { name: 'MLOPS_ADMIN_TOKEN', default: 'unset (admin and feedback APIs disabled)', meaning: 'bearer token (≥ 16 characters) for the model server’s admin and feedback endpoints' },
  { name: 'MLOPS_MODEL_SERVER_URL', default: 'http://127.0.0.1:8000', meaning: 'a model server the promotion’s contract and load tests send requests to (traffic itself is set in PostgreSQL, which every server follows)' },
  { name: 'MLOPS_TASK_QUEUE_PREFIX', default: 'mlops', meaning: 'our task queues are `<prefix>-control`, `<prefix>-cpu`, `<prefix>-gpu` (and `<prefix>-gpu-<class>`): read by our workers, the `mlops` CLI and the webhook; the plugin takes `taskQueues` instead' },
  { name: 'MLOPS_WEBHOOK_TOKEN', default: 'unset (`npm run webhook` refuses to start)', meaning: 'bearer token (≥ 16 characters) that callers of the trigger webhook (Alertmanager, scripts) must send' },
  { name: 'MLOPS_WEBHOOK_PORT / MLOPS_WEBHOOK_HOST', default: '8010 / 127.0.0.1', meaning: 'where `npm run webhook` (Alertmanager and plain retrain webhook) listens' },
  { name: 'MLOPS_WORKER_DEPLOYMENT', default: 'unset (unversioned workers)', meaning: 'Worker Versioning: every worker joins this Worker Deployment; `temporal worker deployment set-current-version` sends new runs to a build (see Worker Versioning)' },
  { name: 'MLOPS_WORKER_BUILD_ID', default: 'the code version', meaning: 'the build id of this worker in MLOPS_WORKER_DEPLOYMENT' },
  { name: 'MLOPS_CODEC_KEYS', default: 'unset (payloads in plain text)', meaning: 'AES-256-GCM payload encryption keys `id:base64,id:base64` (32 bytes each; the first seals new payloads, the others still open old ones): set the same on every worker, client, CLI, webhook and codec server' },
  { name: 'MLOPS_CODEC_KEYS_FILE', default: 'unset', meaning: 'a file holding the keys in the same form (one per line), instead of MLOPS_CODEC_KEYS' },
  { name: 'MLOPS_CODEC_SERVER_TOKEN', default: 'unset (`npm run codec-server` refuses to start)', meaning: 'bearer token (≥ 16 characters) the Temporal CLI (`--codec-auth`) and Web UI send to the codec server' },
  { name: 'MLOPS_CODEC_SERVER_PORT / MLOPS_CODEC_SERVER_HOST', default: '8089 / 127.0.0.1', meaning: 'where `npm run codec-server` listens' },
  { name: 'MLOPS_CODEC_CORS_ORIGINS', default: 'http://localhost:8233,http://127.0.0.1:8233', meaning: 'Web UI origins the codec server answers (CORS)' },
  { name: 'MLOPS_UI_PORT / MLOPS_UI_HOST', default: '8090 / 127.0.0.1', meaning: 'where `mlops ui` (and the dev stack) serve the read-only registry page; with MLOPS_ADMIN_TOKEN set, the page needs it' },
  { name: 'MLOPS_TEMPORAL_UI_URL', default: 'http://localhost:8233', meaning: 'the Temporal Web UI the registry page links every workflow into' },
  { name: 'MLOPS_METRICS_PORT / MLOPS_METRICS_HOST', default: '9464 / 127.0.0.1', meaning: 'where a worker serves `/metrics` (a busy port: a free one, logged); `off` for none' },
  { name: 'MLOPS_SERVE_MAX_BODY_BYTES', default: '1048576', meaning: 'largest inference request body the model server reads' },
  { name: 'MLOPS_SERVE_POLL_MS', default: '250', meaning: 'how often the model server reads the serving state (traffic, versions to hold) from PostgreSQL' },
  { name: 'MLOPS_SERVE_HEARTBEAT_MS', default: '1000', meaning: 'how often the model server writes its heartbeat row in `model_servers`; it counts as live for three intervals' },
  { name: 'MLOPS_SERVE_PREDICTION_LOG_INTERVAL_MS', default: '500', meaning: 'how often the model server writes its buffered prediction-log rows (a crash loses at most this much)' },
  { name: 'MLOPS_SERVE_PREDICTION_LOG_MAX_BUFFERED', default: '100000', meaning: 'prediction-log rows the model server buffers while the database is down; past it the oldest are dropped and counted' },
  { name: 'MLOPS_SERVE_BATCH_DELAY_MS', default: '2', meaning: 'dynamic batching: the longest (ms) an inference request waits for concurrent ones for the same model version to share its onnxruntime run; a lone request does not wait; 0 turns batching off' },
  { name: 'MLOPS_SERVE_BATCH_MAX_ROWS', default: '1024', meaning: 'dynamic batching: a shared run is started once it holds this many rows; a larger request runs alone' },
  { name: 'MLOPS_PYTHON', default: '/usr/bin/python3 if present, else python3', meaning: 'Python for the example trainers and the reference checks (needs Debian python3-sklearn, python3-onnx, python3-xgboost, python3-torch)' },
  { name: 'MLOPS_ONNX_DEVICE', default: '`cpu`', meaning: '`cuda`: a GPU worker evaluates on its leased GPU and the model server runs models on GPU 0 with onnxruntime\'s CUDA execution provider — opt-in, it needs onnxruntime-node\'s CUDA files (`ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node`); without them a loud warning and the CPU' },
  { name: 'MLOPS_TRAIN_THREADS', default: '1', meaning: 'threads one built-in GBDT training step trains on (the same model for any count): the CPU worker runs as many steps at once as the machine has cores, so raise it only where fewer steps share the machine' },
  { name: 'MLOPS_TRAINER_ENV', default: 'unset', meaning: 'comma-separated names of further worker variables a command trainer inherits; it gets PATH, HOME, locale, CUDA/NVIDIA, thread-count and Python-path variables and none of the others (no DATABASE_URL, S3 keys or tokens)' },
  { name: 'MLOPS_COMMAND_TRAINERS', default: '`sklearn-logreg`, `torch-mlp` (examples/trainers)', meaning: 'external trainers: a JSON object `{"name": ["cmd", "arg"]}` or the path of a JSON file holding one' },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', default: 'unset (no tracing)', meaning: 'OpenTelemetry tracing on: the OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (`/v1/traces` is appended); see Tracing' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', default: 'unset', meaning: 'the traces URL as is (e.g. http://collector:4318/v1/traces), instead of OTEL_EXPORTER_OTLP_ENDPOINT' },
  { name: 'OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', default: 'http/protobuf', meaning: 'http/protobuf or http/json (grpc is not supported)' },
  { name: 'OTEL_SERVICE_NAME', default: 'temporal-mlops-worker, temporal-mlops-client (the mlops CLI, the webhook), mlops-serve (the model server)', meaning: 'service.name of the spans a process exports' },
  { name: 'OTEL_RESOURCE_ATTRIBUTES', default: 'unset', meaning: 'further resource attributes, `key=value,key2=value2`' },
  { name: 'OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER', default: 'false / otlp', meaning: '`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns tracing off whatever the endpoint' },
];

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'env'}: ${i.message}`).join('; ');
}

/**
 * Our task queues from MLOPS_TASK_QUEUE_PREFIX alone: for clients (the CLI) that need the
 * queue names but none of the stores' settings.
 */
export function taskQueuesFromEnv(env: NodeJS.ProcessEnv = process.env): TaskQueues {
  const parsed = envSchema.shape.MLOPS_TASK_QUEUE_PREFIX.safeParse(env.MLOPS_TASK_QUEUE_PREFIX);
  if (!parsed.success) throw new ConfigError(`invalid configuration: MLOPS_TASK_QUEUE_PREFIX: ${parsed.error.issues[0]!.message}`);
  return resolveTaskQueues({ prefix: parsed.data });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${formatIssues(parsed.error)}`);
  const e = parsed.data;
  const stateDir = path.resolve(e.MLOPS_STATE_DIR ?? defaultStateDir());
  const artifactRoot = parseArtifactRoot(e.ARTIFACT_ROOT ?? path.join(stateDir, 'artifacts'));

  let s3: S3Settings | undefined;
  if (artifactRoot.kind === 's3' || (e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY)) {
    const missing = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].filter((k) => !e[k as keyof Env]);
    if (missing.length) {
      throw new ConfigError(`ARTIFACT_ROOT is ${artifactRoot.uri} but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set (S3 credentials come from the environment)`);
    }
    const endpoint = new URL(e.S3_ENDPOINT ?? `https://s3.${e.AWS_REGION}.amazonaws.com`);
    const useSSL = endpoint.protocol === 'https:';
    s3 = {
      endPoint: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: e.AWS_ACCESS_KEY_ID!,
      secretKey: e.AWS_SECRET_ACCESS_KEY!,
      region: e.AWS_REGION,
    };
  }
  const localPg = e.MLOPS_LOCAL_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  if (localPg !== 'off' && !/^postgres(ql)?:\/\//.test(localPg)) {
    throw new ConfigError('MLOPS_LOCAL_POSTGRES: must be a postgres:// URL or `off`');
  }
  if (e.MLOPS_GPU_CLASS && !/^[a-z0-9][a-z0-9-]{0,30}$/.test(e.MLOPS_GPU_CLASS)) {
    throw new ConfigError('MLOPS_GPU_CLASS: must be lowercase letters, digits and dashes (e.g. h100)');
  }
  return {
    stateDir,
    projectBinDir: path.resolve(e.MLOPS_TOOLS_DIR ?? defaultProjectBinDir()),
    toolCacheDir: path.resolve(e.MLOPS_TOOLS_CACHE ?? defaultToolCacheDir()),
    temporalCliPath: e.TEMPORAL_CLI_PATH,
    minioServerPath: e.MINIO_SERVER_PATH,
    databaseUrl: e.DATABASE_URL,
    localPostgresUrl: localPg === 'off' ? undefined : localPg,
    databaseName: e.MLOPS_DATABASE_NAME,
    databaseSchema: e.MLOPS_DB_SCHEMA,
    artifactRoot,
    s3,
    gpuClass: e.MLOPS_GPU_CLASS,
    allowCpu: e.MLOPS_ALLOW_CPU,
    codeVersion: e.MLOPS_CODE_VERSION,
    dataRoots: (e.MLOPS_DATA_ROOTS ? e.MLOPS_DATA_ROOTS.split(',').map((d) => d.trim()).filter(Boolean) : defaultDataRoots()).map((d) => path.resolve(d)),
    commandTrainers: parseCommandTrainers(e.MLOPS_COMMAND_TRAINERS, env),
    trainerEnv: (e.MLOPS_TRAINER_ENV ?? '').split(',').map((n) => n.trim()).filter(Boolean),
    trainThreads: e.MLOPS_TRAIN_THREADS === undefined ? 1 : Number(e.MLOPS_TRAIN_THREADS),
    onnxDevice: e.MLOPS_ONNX_DEVICE ?? 'cpu',
    modelServer: { url: (e.MLOPS_MODEL_SERVER_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, ''), adminToken: e.MLOPS_ADMIN_TOKEN },
    taskQueues: resolveTaskQueues({ prefix: e.MLOPS_TASK_QUEUE_PREFIX }),
    webhook: { token: e.MLOPS_WEBHOOK_TOKEN, port: e.MLOPS_WEBHOOK_PORT === undefined ? 8010 : Number(e.MLOPS_WEBHOOK_PORT), host: e.MLOPS_WEBHOOK_HOST ?? '127.0.0.1' },
    metrics: e.MLOPS_METRICS_PORT === 'off' ? 'off' : { port: e.MLOPS_METRICS_PORT === undefined ? 9464 : Number(e.MLOPS_METRICS_PORT), host: e.MLOPS_METRICS_HOST ?? '127.0.0.1' },
    ui: { port: e.MLOPS_UI_PORT === undefined ? 8090 : Number(e.MLOPS_UI_PORT), host: e.MLOPS_UI_HOST ?? '127.0.0.1' },
    temporalUiUrl: (e.MLOPS_TEMPORAL_UI_URL ?? 'http://localhost:8233').replace(/\/$/, ''),
    workerDeployment: e.MLOPS_WORKER_DEPLOYMENT ? { name: e.MLOPS_WORKER_DEPLOYMENT, buildId: e.MLOPS_WORKER_BUILD_ID } : undefined,
    codecKeys: keyRingFromEnv(env),
    codecServer: {
      token: e.MLOPS_CODEC_SERVER_TOKEN,
      port: e.MLOPS_CODEC_SERVER_PORT === undefined ? 8089 : Number(e.MLOPS_CODEC_SERVER_PORT),
      host: e.MLOPS_CODEC_SERVER_HOST ?? '127.0.0.1',
      corsOrigins: (e.MLOPS_CODEC_CORS_ORIGINS ?? 'http://localhost:8233,http://127.0.0.1:8233').split(',').map((o) => o.trim()).filter(Boolean),
    },
    tracing: tracingFromEnv(env),
  };
}
