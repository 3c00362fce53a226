import type { Priority } from '@temporalio/common';
import { z } from 'zod';
import { TRIGGER_SOURCES, type TriggerSource } from './trigger-sources';

/**
 * Task priority and fairness for a model's pipeline steps. Temporal dispatches a queue's tasks
 * by `priorityKey` first (1 goes first, 5 last), then shares each level between fairness keys
 * (one per model) in proportion to their weights, so one model's burst cannot starve another
 * model's retrain. Servers without priority support ignore both.
 */

/** Temporal's default level (the middle of 1..5): a run started by hand, an experiment. */
export const DEFAULT_PRIORITY = 3;

export const priorityKey = z.number().int().min(1).max(5);

export const trainingPriority = z
  .object({
    /** 1 (first) to 5 (last); 3 is Temporal's default. */
    key: priorityKey.default(DEFAULT_PRIORITY),
    /** This model's share of its priority level against other models' (fairness weight). */
    fairnessWeight: z.number().gt(0).max(1000).default(1),
  })
  .strict();
export type TrainingPriority = z.output<typeof trainingPriority>;

/**
 * The level a lifecycle gives the training it starts, by what asked for it: automatic triggers
 * (monitoring, schedules, alerts, new data) outrank a person's manual retrain or experiment.
 */
export const SOURCE_PRIORITIES: Readonly<Record<TriggerSource, number>> = {
  monitoring: 2,
  schedule: 2,
  webhook: 2,
  'new-data': 2,
  cli: DEFAULT_PRIORITY,
  api: DEFAULT_PRIORITY,
  demo: DEFAULT_PRIORITY,
};

export const sourcePriorities = z.partialRecord(z.enum(TRIGGER_SOURCES), priorityKey);
export type SourcePriorities = z.output<typeof sourcePriorities>;

/** The most urgent level among the sources of one training's triggers (policy first, then the defaults). */
export function priorityForSources(sources: readonly string[], policy: SourcePriorities | undefined): number {
  const levels = sources.map((s) => policy?.[s as TriggerSource] ?? SOURCE_PRIORITIES[s as TriggerSource] ?? DEFAULT_PRIORITY);
  return levels.length ? Math.min(...levels) : DEFAULT_PRIORITY;
}

/** The Temporal priority of a model's tasks: its level, and the model as the fairness key. */
export function taskPriority(model: string, priority: TrainingPriority | undefined): Priority {
  return { priorityKey: priority?.key ?? DEFAULT_PRIORITY, fairnessKey: model, fairnessWeight: priority?.fairnessWeight ?? 1 };
}
