import { lifecyclePolicy } from '../../workflows/contracts/lifecycle';
import { LifecycleRules, carriedState } from '../../workflows/lifecycle-rules';

/** The lifecycle's rules without a Temporal server: the workflow only drives this class. */

const T0 = Date.parse('2026-12-01T10:00:00Z');
const policy = (p: Record<string, unknown> = {}) => lifecyclePolicy.parse({ cooldownSeconds: 600, dailyBudget: 2, dedupeWindowSeconds: 3600, ...p });
const trigger = (key?: string) => ({ reason: `r ${key ?? ''}`, source: 'cli' as const, ...(key ? { dedupeKey: key } : {}) });

test('a trigger is queued; a duplicate key within the window is dropped, outside it accepted', () => {
  const r = LifecycleRules.initial('m1', policy(), T0);
  expect(r.accept(trigger('k1'), T0)).toEqual({ kind: 'queued', ticket: 1 });
  expect(r.accept(trigger('k1'), T0 + 1000)).toEqual({ kind: 'duplicate', dedupeKey: 'k1' });
  expect(r.accept(trigger('k1'), T0 + 2000)).toEqual({ kind: 'duplicate', dedupeKey: 'k1' });
  // A burst of duplicates is one decision with a count.
  expect(r.state.decisions.filter((d) => d.kind === 'duplicate-dropped')).toEqual([expect.objectContaining({ figures: { key: 'k1', count: 2 } })]);
  expect(r.state.counters).toMatchObject({ triggers: 3, duplicates: 2 });
  expect(r.accept(trigger('k1'), T0 + 3601_000)).toMatchObject({ kind: 'queued' });
});

test('triggers during a training coalesce into one follow-up; every waiting caller gets the training that took it', () => {
  const r = LifecycleRules.initial('m1', policy({ cooldownSeconds: 0 }), T0);
  const first = r.accept(trigger('a'), T0);
  const taken = r.startCycle();
  expect(taken.triggers).toHaveLength(1);
  r.countTraining(T0);
  r.running = { kind: 'training', workflowId: 'train-1', startedAt: new Date(T0).toISOString(), triggers: taken.triggers };
  r.settle(taken.tickets, { outcome: 'started', workflowId: 'train-1' });
  expect(first.kind === 'queued' && r.outcomeOf(first.ticket)).toEqual({ outcome: 'started', workflowId: 'train-1' });
  for (const k of ['b', 'c', 'd']) expect(r.accept(trigger(k), T0 + 10)).toEqual({ kind: 'coalesced', into: 'train-1' });
  expect(r.state.pending).toHaveLength(3);
  r.running = undefined;
  r.state.lastTrainingEndedAt = T0 + 20;
  const followUp = r.startCycle();
  expect(followUp.triggers.map((t) => t.dedupeKey)).toEqual(['b', 'c', 'd']);
  expect(r.state.pending).toEqual([]);
});

test('cooldown, then the daily budget, defer the next training; a budget of 0 defers it without end', () => {
  const r = LifecycleRules.initial('m1', policy(), T0);
  r.countTraining(T0);
  r.state.lastTrainingEndedAt = T0;
  r.accept(trigger('x'), T0 + 1000);
  expect(r.deferral(T0 + 1000)).toEqual({ until: T0 + 600_000, reason: 'cooldown' });
  expect(r.status(T0 + 1000)).toMatchObject({ phase: 'cooldown', nextEligibleAt: new Date(T0 + 600_000).toISOString() });
  expect(r.deferral(T0 + 600_000)).toBeUndefined();
  r.countTraining(T0 + 600_000);
  r.state.lastTrainingEndedAt = T0 + 600_000;
  // Two trainings today: the budget, not the cooldown, decides, until the next UTC midnight.
  expect(r.deferral(T0 + 2 * 3600_000)).toEqual({ until: Date.parse('2026-12-02T00:00:00Z'), reason: 'budget' });
  expect(r.status(T0 + 2 * 3600_000).phase).toBe('over-budget');

  const none = LifecycleRules.initial('m2', policy({ dailyBudget: 0 }), T0);
  none.accept(trigger('y'), T0);
  expect(none.deferral(T0)).toEqual({ until: Number.POSITIVE_INFINITY, reason: 'budget' });
});

test('new data extends the window once per object and becomes a trigger only when the policy says so', () => {
  const r = LifecycleRules.initial('m1', policy({ retrainOnNewData: true }), T0);
  const t = r.newData({ uris: ['s3://b/a.parquet', 's3://b/b.parquet'], source: 'new-data', dedupeKey: 'batch-1' }, T0);
  expect(t).toMatchObject({ source: 'new-data', figures: { uris: ['s3://b/a.parquet', 's3://b/b.parquet'] } });
  expect(r.newData({ uris: ['s3://b/a.parquet'], source: 'new-data', dedupeKey: 'batch-1' }, T0 + 1)).toBeUndefined();
  expect(r.newData({ uris: ['s3://b/a.parquet'], source: 'new-data' }, T0 + 2)).toBeUndefined();
  expect(r.state.dataUris).toEqual(['s3://b/a.parquet', 's3://b/b.parquet']);
  const quiet = LifecycleRules.initial('m1', policy({ retrainOnNewData: false }), T0);
  expect(quiet.newData({ uris: ['s3://b/c.parquet'], source: 'new-data' }, T0)).toBeUndefined();
});

test('state carried across continue-as-new keeps its triggers, with no caller waiting on them', () => {
  const r = LifecycleRules.initial('m1', policy(), T0);
  r.accept(trigger('p'), T0);
  const carried = carriedState.parse(JSON.parse(JSON.stringify({ ...r.state, generation: 2 })));
  const next = new LifecycleRules('m1', carried);
  const taken = next.startCycle();
  expect(taken.triggers.map((x) => x.dedupeKey)).toEqual(['p']);
  next.settle(taken.tickets, { outcome: 'started', workflowId: 'w' });
  expect(next.outcomeOf(-1)).toBeUndefined();
  // The dedupe memory survives too.
  expect(next.accept(trigger('p'), T0 + 10)).toEqual({ kind: 'duplicate', dedupeKey: 'p' });
});

test('every retrain decision is told to the observer once, by kind and source: started, duplicate, coalesced, deferred, rejected', () => {
  const seen: string[] = [];
  const r = LifecycleRules.initial('m1', policy({ cooldownSeconds: 600, dailyBudget: 5 }), T0, undefined, (d, source) => seen.push(`${d}:${source}`));
  r.accept({ ...trigger('a'), source: 'monitoring' }, T0);
  r.accept({ ...trigger('a'), source: 'monitoring' }, T0 + 1);
  r.accept({ ...trigger('a'), source: 'monitoring' }, T0 + 2);
  r.accept({ ...trigger('b'), source: 'schedule' }, T0 + 3);
  const taken = r.startCycle();
  r.countTraining(T0 + 4, taken.triggers[0]!.source);
  r.running = { kind: 'training', workflowId: 't1', startedAt: new Date(T0).toISOString(), triggers: taken.triggers };
  r.accept({ ...trigger('c'), source: 'webhook' }, T0 + 5);
  r.running = undefined;
  r.state.lastTrainingEndedAt = T0 + 6;
  r.startCycle();
  // Within the cooldown, a new request waits.
  r.accept({ ...trigger('d'), source: 'cli' }, T0 + 7);
  r.rejected('api');
  expect(seen).toEqual(['duplicate:monitoring', 'duplicate:monitoring', 'coalesced:schedule', 'started:monitoring', 'coalesced:webhook', 'deferred:cli', 'rejected:api']);
});
