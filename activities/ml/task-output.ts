import type { TaskKind } from '../../workflows/contracts/training-spec';

/**
 * The one output a model of each task gives, [batch, 1] float32: what the exporters name, the
 * gates check, the server returns and the prediction log records.
 */
export const TASK_OUTPUT = { binary: 'probability', regression: 'prediction' } as const satisfies Record<TaskKind, string>;
export type TaskOutputName = (typeof TASK_OUTPUT)[TaskKind];

export const outputOf = (task: TaskKind | undefined): TaskOutputName => TASK_OUTPUT[task ?? 'binary'];

/** The task a served output name stands for; undefined for a name no task gives. */
export function taskOfOutput(name: string): TaskKind | undefined {
  return (Object.keys(TASK_OUTPUT) as TaskKind[]).find((t) => TASK_OUTPUT[t] === name);
}
