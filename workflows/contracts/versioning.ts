import type { VersioningBehavior, WorkflowDefinitionOptions } from '@temporalio/common';
import { workflowInfo } from '@temporalio/workflow';

/**
 * A workflow's Worker Versioning behavior, declared only on a Worker in a deployment: the server
 * refuses a workflow task that names a behavior from a Worker without one, and our workflows run
 * on unversioned Workers too (whose version has a build id but no deployment name).
 */
export function versioning(behavior: VersioningBehavior): () => WorkflowDefinitionOptions {
  return () => (workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior: behavior } : {});
}
