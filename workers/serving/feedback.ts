import { z } from 'zod';
import type { ClassList } from '../../activities/ml/dataset';
import { answerOfSignature } from '../../activities/training/scoring';

/**
 * Ground truth for logged predictions, sent late to `/v2/models/{name}/feedback`. A label must be
 * one the model's task can judge: a label monitoring would skip is refused now, naming it, instead
 * of being stored and silently never counted.
 */

const label = z.union([z.number(), z.boolean(), z.string().max(256)]);
const one = z.object({ request_id: z.string().min(1).max(300), label }).strict();
export const feedbackBody = z.union([one, z.object({ labels: z.array(one).min(1).max(10_000) }).strict()]);
export type FeedbackLabel = z.output<typeof one>;

/** What labels a version takes: its task's, and for a multiclass one, its classes. */
export type LabelTaker = { task: 'binary' | 'regression' } | { task: 'multiclass'; classes: ClassList };

const EXPECTED = { binary: '0, 1, false or true', regression: 'a finite number' } as const;

function expected(t: LabelTaker): string {
  if (t.task !== 'multiclass') return `${EXPECTED[t.task]} (${t.task})`;
  const shown = t.classes.slice(0, 10).map((c) => JSON.stringify(c)).join(', ');
  return `one of its classes ${shown}${t.classes.length > 10 ? `, … (${t.classes.length})` : ''} (multiclass)`;
}

function fits(t: LabelTaker, y: FeedbackLabel['label']): boolean {
  if (t.task === 'regression') return typeof y === 'number' && Number.isFinite(y);
  // A class the model never saw could never be predicted: monitoring could not judge it.
  if (t.task === 'multiclass') return (t.classes as Array<string | number>).includes(y as string | number);
  return y === 0 || y === 1 || typeof y === 'boolean';
}

/**
 * The first label no version of the model takes, as a message naming its field; undefined when
 * all fit. `takers`: what the model's registered versions take (a label may be for any of them).
 */
export function feedbackProblem(labels: FeedbackLabel[], takers: readonly LabelTaker[], batch: boolean): string | undefined {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!.label;
    if (takers.some((t) => fits(t, y))) continue;
    const field = batch ? `labels.${i}.label` : 'label';
    return `invalid feedback: ${field}: ${JSON.stringify(y)} is not a label this model takes; expected ${takers.map(expected).join(' or ')}`;
  }
  return undefined;
}

/** What a model's versions take, from their output signatures (one naming no task adds none), each once. */
export function tasksOf(outputSignatures: unknown[]): LabelTaker[] {
  const takers = new Map<string, LabelTaker>();
  for (const s of outputSignatures) {
    const shape = answerOfSignature(s);
    if (!shape) continue;
    const t: LabelTaker = shape.classes ? { task: 'multiclass', classes: shape.classes } : { task: shape.task as 'binary' | 'regression' };
    takers.set(JSON.stringify(t), t);
  }
  return [...takers.values()];
}
