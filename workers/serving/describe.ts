import { NotFound, type LoadedVersion, type ModelStore } from './models';
import { BINARY_EXTENSION } from './oip-binary';
import { outputsOf } from './answer';
import type { ServingSync } from './sync';

/** What REST and gRPC both answer about the server and its models: metadata and readiness. */

export const MODEL_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const SERVER_METADATA = { name: 'temporal-mlops', version: '0.1.0', extensions: [BINARY_EXTENSION] };

/** A model name from a path or a request; one we cannot hold is simply not served here. */
export function modelName(name: string): string {
  if (!MODEL_NAME.test(name)) throw new NotFound(`model ${JSON.stringify(name)} is not served here`);
  return name;
}

/** A version from a path or a request ("3"); anything else names no version. */
export function versionNumber(text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw new NotFound(`version ${JSON.stringify(text)} is not a version number`);
  return Number(text);
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: Array<{ name: string; datatype: string; shape: number[] }>;
  outputs: Array<{ name: string; datatype: string; shape: number[] }>;
}

/**
 * OIP model metadata: the versions held, and the inputs of the version that serves — unversioned,
 * the one an unversioned infer reaches (stable) — or of the version asked for.
 */
export function modelMetadata(store: ModelStore, name: string, version?: number): ModelMetadata {
  const state = store.models.get(name);
  if (!state) throw new NotFound(`model ${name} is not served here`);
  const versions = version !== undefined ? [state.versions.get(version)].filter((v): v is LoadedVersion => !!v) : [...state.versions.values()];
  if (!versions.length) throw new NotFound(`model ${name} version ${version} is not loaded`);
  const serving = version === undefined && state.traffic.stable !== undefined ? state.versions.get(state.traffic.stable) : undefined;
  const described = serving ?? versions[0]!;
  return {
    name,
    versions: versions.map((x) => String(x.version)),
    platform: 'onnxruntime_onnx',
    inputs: described.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: [-1, 1] })),
    outputs: outputsOf(described),
  };
}

export interface ModelReadiness {
  ready: boolean;
  /** false: neither held nor one the database says to hold (REST 404, gRPC NOT_FOUND). */
  known: boolean;
  generation?: number;
  missing?: string[];
}

/** Ready: every version the database says this model's servers hold is loaded (and, unversioned, a stable one serves). */
export function modelReadiness(store: ModelStore, sync: ServingSync, name: string, version?: number): ModelReadiness {
  const state = store.models.get(name);
  const required = sync.requiredVersions(name);
  if (version !== undefined) {
    if (state?.versions.get(version)) return { ready: true, known: true };
    return { ready: false, known: required.includes(version) };
  }
  const missing = sync.missing(name);
  const ready = state?.traffic.stable !== undefined && !!state.versions.get(state.traffic.stable) && missing.length === 0;
  if (ready) return { ready, known: true, generation: state.generation };
  return { ready: false, known: !!state || required.length > 0, missing };
}
