import { OVERRIDE_FIELDS } from '../../workflows/contracts/step-fix';
import { resolveTask, resumeOverrides, sliceIssues, trainingSpec } from '../../workflows/contracts/training-spec';
import { trainQueues } from '../../workflows/continuous-training';

const base = { model: 'flights-delay', dataset: { flights: { from: '2001-01', to: '2001-02' } }, preset: 'flights-delay' };

test('defaults and the preset expand into a full task', () => {
  const spec = trainingSpec.parse(base);
  expect(spec.trainer).toBe('gbdt');
  expect(spec.resources).toEqual({ gpu: 1, fallback: [], scheduleToStartSeconds: 600 });
  const task = resolveTask(spec);
  expect(task.features.map((f) => f.name)).toEqual(['hour', 'dayofweek', 'distance', 'origin', 'destination']);
  expect(task.label).toEqual({ column: 'delay', greaterThan: 15 });
  expect(task.split).toEqual({ kind: 'time', column: 'date', testFraction: 0.2 });
});

test('the train step goes to the GPU class, then the fallbacks, or to the CPU queue', () => {
  expect(trainQueues(trainingSpec.parse({ ...base, resources: { gpu: 1, gpuClass: 'h100', fallback: ['a100', 'any'] } }))).toEqual(['mlops-gpu-h100', 'mlops-gpu-a100', 'mlops-gpu']);
  expect(trainQueues(trainingSpec.parse({ ...base, resources: { gpu: 0 } }))).toEqual(['mlops-cpu']);
});

test.each([
  [{ ...base, model: 'Flights' }, 'model'],
  [{ ...base, trainer: 'command' }, 'command'],
  [{ ...base, command: 'x' }, 'command'],
  [{ ...base, hyperparameters: { rounds: 0 } }, 'hyperparameters.rounds'],
  [{ ...base, trainer: 'logreg', hyperparameters: { rounds: 10 } }, 'hyperparameters'],
  [{ ...base, resources: { gpu: 0, gpuClass: 'h100' } }, 'resources.gpuClass'],
  [{ ...base, resources: { gpu: 0, evaluateOn: 'gpu' } }, 'resources.evaluateOn'],
  [{ ...base, resources: { evaluateOn: 'tpu' } }, 'resources.evaluateOn'],
  [{ ...base, dataset: { uris: ['http://example.com/x.csv'] } }, 'dataset.uris.0'],
  [{ ...base, evaluation: { slices: [{ feature: 'origin', top: 3, edges: [1] }] } }, 'evaluation.slices.0.top'],
  [{ ...base, surprise: true }, ''],
])('rejects %j at %s', (spec, field) => {
  const r = trainingSpec.safeParse(spec);
  expect(r.success).toBe(false);
  expect(r.error!.issues.map((i) => i.path.join('.'))).toContain(field);
});

test('a slice names a feature of the task, of the kind it slices', () => {
  const issues = (slices: unknown[], extra = {}) => sliceIssues(trainingSpec.parse({ ...base, ...extra, evaluation: { slices } }));
  expect(issues([{ feature: 'carrier', top: 3 }])).toEqual(['evaluation.slices.0.feature: carrier is not a feature of this task (features: hour, dayofweek, distance, origin, destination)']);
  expect(issues([{ feature: 'origin', top: 3 }, { feature: 'distance', top: 3 }, { feature: 'origin', edges: [1] }])).toEqual([
    'evaluation.slices.1.feature: distance is numeric; top slices a categorical feature',
    'evaluation.slices.2.feature: origin is categorical; edges slices a numeric feature',
  ]);
  expect(issues([{ feature: 'origin', top: 3 }, { feature: 'distance', edges: [500] }])).toEqual([]);
  // The task's own features, not the preset's, once the spec gives them.
  expect(issues([{ feature: 'origin', top: 3 }], { features: [{ name: 'distance', kind: 'numeric' }] })).toHaveLength(1);
});

test('resume overrides may change the task: label, features and split', () => {
  const o = resumeOverrides.parse({ label: { column: 'delay', greaterThan: 30 }, features: [{ name: 'distance', kind: 'numeric' }], split: { kind: 'random' } });
  expect(o.label).toEqual({ column: 'delay', greaterThan: 30 });
  expect(o.split).toEqual({ kind: 'random', seed: 42, testFraction: 0.2 });
  expect(resumeOverrides.safeParse({ label: { column: 'x; drop' } }).error!.issues[0]!.path).toEqual(['label', 'column']);
  // The fix a failure names is always something a resume accepts.
  expect(Object.keys(resumeOverrides.shape).sort()).toEqual([...OVERRIDE_FIELDS].sort());
});
