import type { Kysely } from 'kysely';
import type { ArtifactStore } from '../infra/artifacts';
import type { Config } from '../infra/config';
import type { Database } from '../infra/db/schema';
import type { TrainerRegistry } from './training/trainers';
import { createTrainingActivities } from './continuous-training';
import { createDeploymentActivities } from './deployment';
import { createMonitoringActivities } from './monitoring';
import { createPlatformActivities, type WorkerIdentity } from './platform';
import { createStepActivities } from './steps';
import { createWatcherActivities } from './watcher';

export interface ActivityDeps {
  db: Kysely<Database>;
  artifacts: ArtifactStore;
  config: Config;
  codeVersion: string;
  worker: WorkerIdentity;
  /** The trainers this worker offers (default: the built-in ones and config.commandTrainers). */
  trainers?: TrainerRegistry;
}

/** Every activity a worker registers; the workflow's queue choice decides which worker runs it. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createPlatformActivities(deps),
    ...createStepActivities(deps),
    ...createTrainingActivities(deps),
    ...createDeploymentActivities(deps),
    ...createMonitoringActivities(deps),
    ...createWatcherActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

export { createPlatformActivities, type PlatformActivities, type PlatformDeps, type ProbeResult } from './platform';
