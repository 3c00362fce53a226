import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import type { Kysely } from 'kysely';
import { readAll, type ArtifactStore } from '../../infra/artifacts';
import type { Database } from '../../infra/db/schema';
import { getModelByName, getModelVersion } from '../../infra/db/repositories';
import { BadRequest, type InputSignature } from './oip';
import { answerOfSignature } from '../../activities/training/scoring';
import type { AnswerShape } from './answer';
import { ORT_TYPES } from '../../activities/ml/model-inputs';
import { placeSession, type OnnxDevice } from '../../infra/onnx-device';
import type { TaskKind } from '../../workflows/contracts/training-spec';

/**
 * The versions a model server holds: loaded from the registry and the artifact store, the ONNX
 * bytes checked against the registry's sha256 before onnxruntime sees them. Traffic state is one
 * immutable object per model, replaced whole, so a request sees either the old or the new state.
 */

export interface LoadedVersion extends AnswerShape {
  model: string;
  modelId: string;
  modelVersionId: string;
  version: number;
  sha256: string;
  session: ort.InferenceSession;
  inputs: InputSignature[];
  task: TaskKind;
  inflight: number;
  loadedAt: string;
  /** Where its graph runs: `cpu` or `cuda:<index>`. */
  device: string;
}

export interface ModelPlacement {
  /** MLOPS_ONNX_DEVICE: `cuda` runs every loaded version on GPU 0 when onnxruntime has CUDA, the CPU (said by `warn`) when not. */
  device: OnnxDevice;
  warn: (message: string) => void;
}

/** One intra-op thread: concurrent runs (batches of requests) spread over the cores instead. */
const SERVING_SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: 1 };

export interface Traffic {
  stable?: number;
  canary?: number;
  /** Percent of unversioned requests that go to the canary. */
  canaryWeight: number;
  shadow?: number;
}

export interface ModelState {
  name: string;
  versions: Map<number, LoadedVersion>;
  traffic: Traffic;
  /** The serving-state generation this traffic comes from (0: set in memory, not from the database). */
  generation: number;
}

export class NotFound extends BadRequest {
  constructor(message: string) {
    super(message, 404);
  }
}

export class ModelStore {
  readonly models = new Map<string, ModelState>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly artifacts: ArtifactStore,
    private readonly placement: ModelPlacement = { device: 'cpu', warn: () => undefined },
  ) {}

  private readonly loading = new Map<string, Promise<LoadedVersion>>();

  /** Loads a version once, however many requests ask for it at the same time. */
  load(name: string, version: number): Promise<LoadedVersion> {
    const existing = this.models.get(name)?.versions.get(version);
    if (existing) return Promise.resolve(existing);
    const key = `${name}@${version}`;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.loadOnce(name, version).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  private async loadOnce(name: string, version: number): Promise<LoadedVersion> {
    const model = await getModelByName(this.db, name);
    if (!model) throw new NotFound(`model ${name} is not in the registry`);
    const mv = await getModelVersion(this.db, model.id, version);
    if (!mv) throw new NotFound(`model ${name} has no version ${version}`);
    if (mv.status !== 'registered') throw new BadRequest(`model ${name} version ${version} was rejected; it cannot be served`, 409);
    if (!mv.onnx_artifact_id) throw new BadRequest(`model ${name} version ${version} has no ONNX file`, 409);
    const artifact = await this.db.selectFrom('artifacts').selectAll().where('id', '=', mv.onnx_artifact_id).executeTakeFirstOrThrow();
    let bytes: Buffer;
    try {
      bytes = await readAll(await this.artifacts.get(this.artifacts.keyFromUri(artifact.uri)));
    } catch (err) {
      // The usual cause: this server was started with another artifact store than the workers.
      const s3 = artifact.uri.startsWith('s3://');
      throw new Error(
        `model ${name} v${version}: cannot read ${artifact.uri} from this server's artifact store ${this.artifacts.root} (${err instanceof Error ? err.message : String(err)}); ` +
          `start the model server with the store the workers write to: ARTIFACT_ROOT=${s3 ? artifact.uri.replace(/^(s3:\/\/[^/]+).*$/, '$1') + '/…' : '<the workers\' ARTIFACT_ROOT>'}${s3 ? ', S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY' : ''} (npm run dev prints them)`,
      );
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== artifact.sha256) throw new Error(`model ${name} v${version}: ${artifact.uri} has sha256 ${sha}, the registry says ${artifact.sha256}; refusing to load it`);
    const { session, device } = await placeSession(bytes, SERVING_SESSION_OPTIONS, { device: this.placement.device }, (m) => this.placement.warn(`model ${name} v${version}: ${m}`));
    const inputs = (mv.input_signature as Array<{ name: string; datatype: string }>).map((s) => ({ name: s.name, datatype: s.datatype as InputSignature['datatype'], shape: [-1, 1] }));
    const shape = answerOfSignature(mv.output_signature);
    if (!shape || !shape.names.every((n) => session.outputNames.includes(n))) {
      await session.release();
      const declared = Array.isArray(mv.output_signature) ? (mv.output_signature as Array<{ name?: unknown }>).map((o) => String(o.name)) : [];
      throw new Error(
        `model ${name} v${version}: the registry declares outputs [${declared.join(', ')}] and the graph gives [${session.outputNames.join(', ')}]; a served model gives probability, prediction, or probabilities (with its classes) and label; refusing to load it`,
      );
    }
    const { task, output, width, classes } = shape;
    // A registry signature the graph does not take would fail every request at run time: refused at load, naming the difference.
    const graphInputs = new Map(session.inputMetadata.map((m) => [m.name, m.isTensor ? m.type : 'not a tensor']));
    const mismatched = [
      ...inputs.filter((i) => graphInputs.get(i.name) !== ORT_TYPES[i.datatype]).map((i) => `${i.name} ${i.datatype} (graph: ${graphInputs.get(i.name) ?? 'no such input'})`),
      ...[...graphInputs.keys()].filter((n) => !inputs.some((i) => i.name === n)).map((n) => `${n} (graph only)`),
    ];
    if (mismatched.length) {
      await session.release();
      throw new Error(`model ${name} v${version}: the registry's inputs do not match the graph's: ${mismatched.join(', ')}; refusing to load it`);
    }
    const loaded: LoadedVersion = { model: name, modelId: model.id, modelVersionId: mv.id, version, sha256: sha, session, inputs, output, width, ...(classes ? { classes } : {}), task, inflight: 0, loadedAt: new Date().toISOString(), device };
    const current = this.models.get(name) ?? { name, versions: new Map(), traffic: { canaryWeight: 0 }, generation: 0 };
    // Copy-on-write: requests holding the old state keep a consistent view.
    this.models.set(name, { ...current, versions: new Map([...current.versions, [version, loaded]]) });
    return loaded;
  }

  /** Sets the traffic split, loading any version it names first: the switch itself is atomic. */
  async setTraffic(name: string, traffic: Traffic): Promise<ModelState> {
    for (const v of [traffic.stable, traffic.canary, traffic.shadow]) if (v !== undefined) await this.load(name, v);
    if (traffic.stable === undefined) throw new BadRequest('traffic: a stable version is required');
    if (traffic.canaryWeight < 0 || traffic.canaryWeight > 100) throw new BadRequest('traffic: canaryWeight must be between 0 and 100');
    const state = this.models.get(name)!;
    const next = { ...state, traffic: { ...traffic } };
    this.models.set(name, next);
    return next;
  }

  /**
   * Switches to a generation of the database's serving state, whose versions are all loaded
   * already: the traffic switch is atomic, then versions the state no longer names are unloaded
   * (each once its in-flight requests end). An older generation than the one served is ignored.
   */
  applyState(name: string, traffic: Traffic, generation: number, keep: number[]): boolean {
    const state = this.models.get(name) ?? { name, versions: new Map<number, LoadedVersion>(), traffic: { canaryWeight: 0 }, generation: 0 };
    if (generation <= state.generation) return false;
    for (const v of [traffic.stable, traffic.canary, traffic.shadow]) if (v !== undefined && !state.versions.has(v)) throw new Error(`model ${name} v${v} is not loaded`);
    this.models.set(name, { ...state, traffic: { ...traffic }, generation });
    for (const v of state.versions.keys()) if (!keep.includes(v)) void this.unload(name, v).catch(() => undefined);
    return true;
  }

  /** Unloads a version no traffic points at; its session is released once in-flight requests end. */
  async unload(name: string, version: number): Promise<void> {
    const state = this.models.get(name);
    const v = state?.versions.get(version);
    if (!state || !v) throw new NotFound(`model ${name} version ${version} is not loaded`);
    const t = state.traffic;
    if ([t.stable, t.canary, t.shadow].includes(version)) throw new BadRequest(`model ${name} version ${version} still receives traffic; change the traffic first`, 409);
    const versions = new Map(state.versions);
    versions.delete(version);
    this.models.set(name, { ...state, versions });
    while (v.inflight > 0) await new Promise((r) => setTimeout(r, 10));
    await v.session.release();
  }

  /** The version a request goes to: an explicit one, else canary by weight, else stable. */
  route(name: string, version?: number): { target: LoadedVersion; role: 'stable' | 'canary' | 'pinned'; shadow?: LoadedVersion } {
    const state = this.models.get(name);
    if (!state) throw new NotFound(`model ${name} is not served here`);
    if (version !== undefined) {
      const target = state.versions.get(version);
      if (!target) throw new NotFound(`model ${name} version ${version} is not loaded`);
      return { target, role: 'pinned' };
    }
    const t = state.traffic;
    if (t.stable === undefined) throw new NotFound(`model ${name} has no stable version`);
    const canary = t.canary !== undefined && t.canaryWeight > 0 && Math.random() * 100 < t.canaryWeight;
    const target = state.versions.get(canary ? t.canary! : t.stable)!;
    return { target, role: canary ? 'canary' : 'stable', shadow: t.shadow !== undefined ? state.versions.get(t.shadow) : undefined };
  }

  async close(): Promise<void> {
    for (const s of this.models.values()) for (const v of s.versions.values()) await v.session.release().catch(() => undefined);
    this.models.clear();
  }
}
