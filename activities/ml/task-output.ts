import type { TaskKind } from '../../workflows/contracts/training-spec';

/**
 * The scores a model of each task gives, float32: what the exporters name, the gates check, the
 * server returns and the prediction log records. [batch, 1] for binary and regression;
 * [batch, k] class probabilities for multiclass, which also gives `label` (MULTICLASS_LABEL).
 */
export const TASK_OUTPUT = { binary: 'probability', regression: 'prediction', multiclass: 'probabilities' } as const satisfies Record<TaskKind, string>;

/** A multiclass model's second output: the most probable class, [batch, 1], as the data has it (string, or int64 for integer classes). */
export const MULTICLASS_LABEL = 'label';
export type TaskOutputName = (typeof TASK_OUTPUT)[TaskKind];

export const outputOf = (task: TaskKind | undefined): TaskOutputName => TASK_OUTPUT[task ?? 'binary'];

/** The task a served output name stands for; undefined for a name no task gives. */
export function taskOfOutput(name: string): TaskKind | undefined {
  return (Object.keys(TASK_OUTPUT) as TaskKind[]).find((t) => TASK_OUTPUT[t] === name);
}
