import { MockActivityEnvironment } from '@temporalio/testing';
import { isDependencyOutage, waitingOutOutages } from '../../activities/dependency-outage';

const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });

test('an unreachable store is an outage; a refused or bad request is not', () => {
  expect(isDependencyOutage(withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9000'))).toBe(true);
  expect(isDependencyOutage(new Error('Connection terminated unexpectedly'))).toBe(true);
  expect(isDependencyOutage(withCode('57P01', 'terminating connection due to administrator command'))).toBe(true);
  expect(isDependencyOutage(withCode('08006'))).toBe(true);
  expect(isDependencyOutage(new Error('write failed', { cause: withCode('ECONNRESET') }))).toBe(true);
  expect(isDependencyOutage(new AggregateError([withCode('ECONNREFUSED')], 'all attempts failed'))).toBe(true);
  expect(isDependencyOutage(Object.assign(new Error('S3'), { statusCode: 503 }))).toBe(true);
  expect(isDependencyOutage(withCode('23505', 'duplicate key value violates unique constraint'))).toBe(false);
  expect(isDependencyOutage(withCode('NoSuchKey', 'The specified key does not exist.'))).toBe(false);
  expect(isDependencyOutage(new TypeError('x is not a function'))).toBe(false);
  expect(isDependencyOutage(undefined)).toBe(false);
});

test('an outage is waited out inside the attempt; any other error fails it at once; the wait has a budget', async () => {
  const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 600_000, currentAttemptScheduledTimestampMs: Date.now() });
  let calls = 0;
  const flaky = async () => {
    if (++calls < 3) throw withCode('ECONNREFUSED');
    return 'stored';
  };
  expect(await env.run(() => waitingOutOutages('test', flaky))).toBe('stored');
  expect(calls).toBe(3);

  let bad = 0;
  await expect(env.run(() => waitingOutOutages('test', async () => { bad++; throw new TypeError('a bug'); }))).rejects.toThrow('a bug');
  expect(bad).toBe(1);

  let down = 0;
  const waits: number[] = [];
  await expect(env.run(() => waitingOutOutages('test', async () => { down++; throw withCode('ECONNREFUSED'); }, { budgetMs: 1200, onWait: () => waits.push(down) }))).rejects.toThrow('ECONNREFUSED');
  expect(down).toBe(2);
  expect(waits).toEqual([1]);
});
