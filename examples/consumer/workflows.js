// The team's own workflow, bundled beside ours by the plugin. It starts our training pipeline
// as a child by function reference, from the workflow-safe subpath.
import { executeChild, workflowInfo } from '@temporalio/workflow';
import { continuousTraining } from 'temporal-mlops/workflows';

export async function acmeWeeklyModel(spec) {
  const result = await executeChild(continuousTraining, { workflowId: `${workflowInfo().workflowId}-training`, args: [spec] });
  return { model: result.model, version: result.version, status: result.status, auc: result.metrics.auc };
}
