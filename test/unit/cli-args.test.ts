import { Writable } from 'node:stream';
import { UserFacingError } from '../../infra/errors';
import { checkCron, parseCommand, parseDuration, parseMonths, readJson } from '../../client/args';
import { describeRetrainOutcome } from '../../client/commands/lifecycle';
import { main } from '../../client/main';
import { createProgress, formatElapsed } from '../../client/progress';
import { buildTrainingSpec, defaultTrainingWorkflowId } from '../../client/training-spec-args';
import { trainingProgressLine } from '../../client/views';
import type { PipelineStatus } from '../../workflows/pipeline';

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserFacingError);
    return (err as Error).message;
  }
  throw new Error('expected a UserFacingError');
}

describe('flag parsing', () => {
  test('durations', () => {
    expect(parseDuration('every', '24h')).toBe(86_400);
    expect(parseDuration('every', '90s')).toBe(90);
    expect(parseDuration('every', '7d')).toBe(7 * 86_400);
    expect(userError(() => parseDuration('every', '1.5h'))).toMatch(/^--every: must be a duration/);
    expect(userError(() => parseDuration('every', '0m'))).toMatch(/--every/);
  });

  test('months', () => {
    expect(parseMonths('2001-01:2001-03')).toEqual({ flights: { from: '2001-01', to: '2001-03' } });
    expect(parseMonths('2001-02')).toEqual({ flights: { from: '2001-02', to: '2001-02' } });
    expect(userError(() => parseMonths('jan'))).toMatch(/^--months: must be YYYY-MM/);
  });

  test('cron', () => {
    expect(checkCron(' 0 2 * * * ')).toBe('0 2 * * *');
    expect(checkCron('@daily')).toBe('@daily');
    expect(userError(() => checkCron('every night'))).toMatch(/^--cron:/);
  });

  test('unknown options name the command', () => {
    expect(userError(() => parseCommand('train', ['--modle', 'x'], { model: { type: 'string' } }))).toMatch(/^train: Unknown option '--modle'/);
  });

  test('inline JSON or a file', () => {
    expect(readJson('--spec-json', '{"a": 1}')).toEqual({ a: 1 });
    expect(userError(() => readJson('--spec-json', '{"a": '))).toMatch(/^--spec-json: not valid JSON/);
    expect(userError(() => readJson('--spec', '/nonexistent/spec.json'))).toMatch(/^--spec: cannot read \/nonexistent\/spec\.json: ENOENT/);
  });
});

describe('train spec', () => {
  test('months and model make a flights-delay spec', () => {
    expect(buildTrainingSpec({ model: 'flights-delay', months: '2001-01:2001-02', sampleRows: 3000 })).toEqual({
      preset: 'flights-delay',
      model: 'flights-delay',
      dataset: { flights: { from: '2001-01', to: '2001-02' } },
      sampleRows: 3000,
    });
  });

  test('a spec from JSON, completed by flags', () => {
    const spec = buildTrainingSpec({ model: 'm1', specJson: '{"preset": "flights-delay", "hyperparameters": {"rounds": 5}, "resources": {"gpu": 0}}', months: '2001-01' });
    expect(spec).toMatchObject({ model: 'm1', hyperparameters: { rounds: 5 }, resources: { gpu: 0 }, dataset: { flights: { from: '2001-01', to: '2001-01' } } });
  });

  test('a bad field is named', () => {
    expect(userError(() => buildTrainingSpec({ model: 'm1', specJson: '{"preset": "flights-delay", "hyperparameters": {"rounds": 0}}', months: '2001-01' }))).toMatch(/^invalid spec: hyperparameters\.rounds: /);
    expect(userError(() => buildTrainingSpec({ model: 'M1', months: '2001-01' }))).toMatch(/^invalid spec: model: must be/);
    expect(userError(() => buildTrainingSpec({ model: 'm1', months: '2001-09' }))).toMatch(/^invalid spec: dataset/);
    expect(userError(() => buildTrainingSpec({ model: 'm1' }))).toMatch(/^invalid spec: dataset: required/);
    expect(userError(() => buildTrainingSpec({ model: 'm1', specJson: '{"model": "m2"}' }))).toMatch(/--model m1 differs from the spec's model "m2"/);
    expect(userError(() => buildTrainingSpec({ specJson: '[1]' }))).toMatch(/must be a JSON object/);
  });

  test('default workflow ids sort by time', () => {
    expect(defaultTrainingWorkflowId('m1', new Date('2025-01-02T03:04:05.678Z'), 'ab12')).toBe('train-m1-20250102t030405-ab12');
  });
});

describe('progress', () => {
  function sink(tty: boolean) {
    let text = '';
    const stream = new Writable({ write: (chunk: Buffer, _enc, cb) => ((text += chunk.toString()), cb()) }) as unknown as NodeJS.WriteStream;
    return { progress: createProgress({ stream, tty }), text: () => text };
  }

  test('plain lines off a terminal, one per change', () => {
    const s = sink(false);
    s.progress.update('step a');
    s.progress.update('step a');
    s.progress.update('step b');
    s.progress.note('done a');
    s.progress.stop();
    expect(s.text().split('\n').filter(Boolean)).toEqual([expect.stringMatching(/^\[0s\] step a$/), expect.stringMatching(/^\[0s\] step b$/), 'done a']);
  });

  test('one rewritten status line on a terminal', () => {
    const s = sink(true);
    s.progress.update('step a');
    s.progress.update('step b');
    s.progress.stop();
    expect(s.text()).not.toContain('\n');
    expect(s.text()).toContain('\r\x1b[2Kstep b  0s');
  });

  test('elapsed time', () => {
    expect(formatElapsed(5_400)).toBe('5s');
    expect(formatElapsed(125_000)).toBe('2m05s');
    expect(formatElapsed(3_780_000)).toBe('1h03m');
  });

  test('the status line names step, queue, attempt and round', () => {
    const st: PipelineStatus = {
      pipeline: 'continuousTraining',
      workflowId: 'train-1',
      state: 'running',
      currentStep: 'train',
      resumes: 0,
      steps: [
        { name: 'snapshot', state: 'succeeded', attempts: 1, runs: 1, notes: [] },
        { name: 'train', state: 'running', queue: 'mlops-cpu', attempts: 0, runs: 1, notes: [] },
        { name: 'register', state: 'pending', attempts: 0, runs: 0, notes: [] },
      ],
    };
    expect(trainingProgressLine(st, { attempt: 2, details: { round: 30, rounds: 100 } })).toBe('train-1: [2/3] train running (mlops-cpu, attempt 2, round 30/100)');
  });
});

test('unknown commands are user errors', async () => {
  await expect(main(['frobnicate'])).rejects.toThrow(/unknown command "frobnicate"/);
  await expect(main(['schedule', 'explode'])).rejects.toThrow(/schedule: expected one of create/);
  await expect(main(['status'])).rejects.toThrow(/status: give --model <name> or --workflow-id <id>/);
  await expect(main(['monitor', 'stop', '--model', 'm1'])).rejects.toThrow(/monitor: usage/);
});

describe('retrain answers', () => {
  test('each outcome of the Update reads as one line naming what happened', () => {
    expect(describeRetrainOutcome('m1', 'model/m1', { outcome: 'started', workflowId: 'train-m1-1' })).toMatch(/^m1: training train-m1-1 started by model\/m1\n/);
    expect(describeRetrainOutcome('m1', 'model/m1', { outcome: 'coalesced', runningWorkflowId: 'train-m1-1' })).toMatch(/coalesced: a training runs \(train-m1-1\)/);
    expect(describeRetrainOutcome('m1', 'model/m1', { outcome: 'duplicate', dedupeKey: 'k1' })).toMatch(/no training started: duplicate-dropped — dedupe key k1/);
    expect(describeRetrainOutcome('m1', 'model/m1', { outcome: 'deferred', until: '2025-01-01T11:00:00.000Z', reason: 'cooldown' })).toMatch(/deferred \(cooldown\) until 2025-01-01T11:00:00Z/);
    expect(describeRetrainOutcome('m1', 'model/m1', { outcome: 'deferred', until: null, reason: 'budget' })).toMatch(/deferred \(daily budget used\) until the budget is raised/);
  });
});
