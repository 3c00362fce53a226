import { lifecyclePolicy } from '../../workflows/contracts/lifecycle';
import { DEFAULT_PRIORITY, priorityForSources, taskPriority } from '../../workflows/contracts/priority';
import { trainingSpec } from '../../workflows/contracts/training-spec';

const spec = { model: 'm', preset: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-01' } } };

test('automatic triggers outrank manual ones by default; the policy can change any source', () => {
  expect(priorityForSources(['monitoring'], undefined)).toBe(2);
  expect(priorityForSources(['schedule'], {})).toBe(2);
  expect(priorityForSources(['cli'], {})).toBe(DEFAULT_PRIORITY);
  // Triggers coalesced into one training: the most urgent one decides.
  expect(priorityForSources(['cli', 'monitoring'], {})).toBe(2);
  expect(priorityForSources(['cli', 'monitoring'], { cli: 1 })).toBe(1);
  expect(priorityForSources(['schedule'], { schedule: 4 })).toBe(4);
  expect(priorityForSources([], {})).toBe(DEFAULT_PRIORITY);
});

test("a model's tasks carry its level and the model as the fairness key", () => {
  expect(taskPriority('flights-delay', undefined)).toEqual({ priorityKey: 3, fairnessKey: 'flights-delay', fairnessWeight: 1 });
  expect(taskPriority('m', { key: 1, fairnessWeight: 2.5 })).toEqual({ priorityKey: 1, fairnessKey: 'm', fairnessWeight: 2.5 });
});

test('the spec and the policy name a bad priority by its field', () => {
  expect(trainingSpec.parse({ ...spec, priority: {} }).priority).toEqual({ key: 3, fairnessWeight: 1 });
  expect(trainingSpec.parse(spec).priority).toBeUndefined();
  const bad = trainingSpec.safeParse({ ...spec, priority: { key: 0 } });
  expect(bad.success).toBe(false);
  expect(bad.error!.issues[0]!.path).toEqual(['priority', 'key']);
  expect(trainingSpec.safeParse({ ...spec, priority: { key: 2, urgent: true } }).success).toBe(false);
  expect(lifecyclePolicy.parse({}).priorities).toEqual({});
  expect(lifecyclePolicy.parse({ priorities: { monitoring: 1 } }).priorities).toEqual({ monitoring: 1 });
  const unknown = lifecyclePolicy.safeParse({ priorities: { pager: 1 } });
  expect(unknown.success).toBe(false);
  expect(unknown.error!.issues[0]!.path[0]).toBe('priorities');
  expect(lifecyclePolicy.safeParse({ priorities: { schedule: 9 } }).success).toBe(false);
});
