import { z } from 'zod';
import type { TaskKind } from '../../workflows/contracts/training-spec';
import { taskOfSignature } from '../../activities/training/scoring';

/**
 * Ground truth for logged predictions, sent late to `/v2/models/{name}/feedback`. A label must be
 * one the model's task can judge: a label monitoring would skip is refused now, naming it, instead
 * of being stored and silently never counted.
 */

const label = z.union([z.number(), z.boolean(), z.string().max(256)]);
const one = z.object({ request_id: z.string().min(1).max(300), label }).strict();
export const feedbackBody = z.union([one, z.object({ labels: z.array(one).min(1).max(10_000) }).strict()]);
export type FeedbackLabel = z.output<typeof one>;

const EXPECTED: Record<TaskKind, string> = { binary: '0, 1, false or true', regression: 'a finite number', multiclass: 'a class: a string or an integer' };

function fits(task: TaskKind, y: FeedbackLabel['label']): boolean {
  if (task === 'regression') return typeof y === 'number' && Number.isFinite(y);
  if (task === 'multiclass') return typeof y === 'string' || Number.isSafeInteger(y);
  return y === 0 || y === 1 || typeof y === 'boolean';
}

/**
 * The first label no task of the model takes, as a message naming its field; undefined when all
 * fit. `tasks`: the tasks of the model's registered versions (a label may be for any of them).
 */
export function feedbackProblem(labels: FeedbackLabel[], tasks: ReadonlySet<TaskKind>, batch: boolean): string | undefined {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!.label;
    if ([...tasks].some((t) => fits(t, y))) continue;
    const field = batch ? `labels.${i}.label` : 'label';
    const expected = [...tasks].map((t) => `${EXPECTED[t]} (${t})`).join(' or ');
    return `invalid feedback: ${field}: ${JSON.stringify(y)} is not a label this model takes; expected ${expected}`;
  }
  return undefined;
}

/** The tasks of a model's versions, from their output signatures (one naming no task adds none). */
export function tasksOf(outputSignatures: unknown[]): Set<TaskKind> {
  return new Set(outputSignatures.flatMap((s) => taskOfSignature(s) ?? []));
}
