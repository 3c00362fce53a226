import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runEntry } from '../helpers/run-entry';

/**
 * Histories recorded from earlier versions of the workflows, replayed against today's code: a
 * change that would break a running workflow (non-determinism) fails here, not in production.
 * Replay runs in a child process (`npm run replay`), outside jest's VM, whose realm breaks
 * protobufjs's `instanceof` checks. Record a new history with
 * `temporal workflow show --workflow-id … -o json > test/fixtures/histories/<name>.json`.
 */
const fixtures = path.join(__dirname, '..', 'fixtures', 'histories');
const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, MLOPS_LOG_LEVEL: 'ERROR' });

test('every stored history replays against the current workflow code', async () => {
  const result = await runEntry('infra/replay-cli.ts', [fixtures], env(), 120_000);
  expect(result.stdout).toMatch(/^ok {3}platform-check-2026-11-22$/m);
  expect(result.stdout).toMatch(/^ok {3}continuous-training-2026-11-22$/m);
  expect(result.stdout).toMatch(/^ok {3}lifecycle-2026-11-23$/m);
  expect(result.stdout).toMatch(/^ok {3}monitoring-2026-11-23$/m);
  expect(result.stdout).toMatch(/^ok {3}dataset-watcher-2026-11-23$/m);
  expect(result.code).toBe(0);
});

test('a history the code would not produce fails replay, naming it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'replay-'));
  try {
    const history = JSON.parse(readFileSync(path.join(fixtures, 'platform-check-2026-11-22.json'), 'utf8'));
    // Pretend an older version scheduled a different activity: replay must notice.
    for (const e of history.events) {
      const attrs = e.activityTaskScheduledEventAttributes;
      if (attrs?.activityType?.name === 'platformProbe') attrs.activityType.name = 'someOldProbe';
    }
    writeFileSync(path.join(dir, 'tampered.json'), JSON.stringify(history));
    const result = await runEntry('infra/replay-cli.ts', [dir], env(), 120_000);
    expect(result.stdout).toMatch(/^FAIL tampered: /m);
    expect(result.code).toBe(2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
