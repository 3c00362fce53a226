import type { Config } from './config';

/**
 * What each of our production entry points needs from its environment to do its job, by npm
 * script: the entry points warn about a missing one at start, and the compose test fails on it,
 * so a service that would start but fail its first promotion is caught before it ships.
 */

export interface Requirement {
  variable: string;
  why: string;
  met(config: Config, env: NodeJS.ProcessEnv): boolean;
}

const set = (name: string) => (_: Config, env: NodeJS.ProcessEnv) => Boolean(env[name]?.trim());

const metadataStore: Requirement = { variable: 'DATABASE_URL', why: 'the metadata store and model registry', met: (c) => Boolean(c.databaseUrl) };
const temporal: Requirement = { variable: 'TEMPORAL_ADDRESS', why: 'the Temporal server (127.0.0.1:7233 is only right on a laptop)', met: set('TEMPORAL_ADDRESS') };
const sharedArtifacts: Requirement = { variable: 'ARTIFACT_ROOT', why: 'an artifact store every worker and the model server share (the local default is per machine)', met: (c) => c.artifactRoot.kind === 's3' };

export const START_REQUIREMENTS: Record<string, Requirement[]> = {
  'worker:control': [
    metadataStore,
    temporal,
    sharedArtifacts,
    { variable: 'MLOPS_MODEL_SERVER_URL', why: "a model server the promotion's contract and load tests reach", met: set('MLOPS_MODEL_SERVER_URL') },
  ],
  'worker:cpu': [metadataStore, temporal, sharedArtifacts],
  'worker:gpu': [metadataStore, temporal, sharedArtifacts],
  serve: [metadataStore, sharedArtifacts, { variable: 'MLOPS_ADMIN_TOKEN', why: 'the feedback API (late labels for monitoring) and the admin API', met: (c) => Boolean(c.modelServer.adminToken) }],
  webhook: [temporal, { variable: 'MLOPS_WEBHOOK_TOKEN', why: 'the bearer token callers send', met: (c) => Boolean(c.webhook.token) }],
};

/** The requirements of `script` that `env` leaves unmet, as `VARIABLE (why)`. */
export function unmetRequirements(script: string, config: Config, env: NodeJS.ProcessEnv): string[] {
  return (START_REQUIREMENTS[script] ?? []).filter((r) => !r.met(config, env)).map((r) => `${r.variable} (${r.why})`);
}
