import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { readTestScores } from '../../activities/training/trainers/command';

/** A command trainer's own test scores (MLOPS_TEST_SCORES): read exactly, or refused naming what is wrong. */

let dir: string;
beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'scores-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

test('a header, then one score per row in row order', async () => {
  expect(Array.from((await readTestScores(file('ok.csv', 'probability\n0.25\n0.5\r\n1e-3\n'), 3, 't'))!)).toEqual([0.25, 0.5, 0.001]);
  expect(await readTestScores(path.join(dir, 'none.csv'), 3, 't')).toBeUndefined();
});

test.each([
  ['too few rows', 'probability\n0.1\n', /train: t wrote 1 scores to MLOPS_TEST_SCORES for 2 MLOPS_VALID_DATA rows/],
  ['a value that is not a number', 'probability\n0.1\nnan\n', /MLOPS_TEST_SCORES line 3 is "nan", not a number/],
  ['an empty line', 'probability\n\n0.1\n', /line 2 is "", not a number/],
])('%s fails the step without a retry', async (name, text, pattern) => {
  const err = await readTestScores(file(`${name}.csv`, text), 2, 't').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as ApplicationFailure).message).toMatch(pattern);
});
