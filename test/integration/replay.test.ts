import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as workflows from '../../workflows';
import { runEntry } from '../helpers/run-entry';

/**
 * Histories recorded from earlier versions of the workflows, replayed against today's code: a
 * change that would break a running workflow (non-determinism) fails here, not in production.
 * Replay runs in a child process (`npm run replay`), outside jest's VM, whose realm breaks
 * protobufjs's `instanceof` checks. `npm run record-histories` records one
 * run of every workflow type (keep the older files: they stand for runs still on the old code).
 */
const fixtures = path.join(__dirname, '..', 'fixtures', 'histories');
const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, MLOPS_LOG_LEVEL: 'ERROR' });

/** The workflow type of each stored history (its first event). */
function storedTypes(): Map<string, string> {
  const types = new Map<string, string>();
  for (const f of readdirSync(fixtures).filter((n) => n.endsWith('.json'))) {
    const json = JSON.parse(readFileSync(path.join(fixtures, f), 'utf8'));
    const history = json.history ?? json;
    types.set(f.replace(/\.json$/, ''), history.events[0].workflowExecutionStartedEventAttributes.workflowType.name);
  }
  return types;
}

test('every workflow we ship has stored histories, and every stored history replays against the current workflow code', async () => {
  const stored = storedTypes();
  // A workflow without a recorded run is a workflow whose changes nothing checks: record it (npm run record-histories).
  expect(Object.keys(workflows).filter((name) => ![...stored.values()].includes(name))).toEqual([]);
  const result = await runEntry('infra/replay-cli.ts', [fixtures], env(), 180_000);
  for (const name of stored.keys()) expect(result.stdout).toMatch(new RegExp(`^ok {3}${name}$`, 'm'));
  expect(result.stdout).not.toMatch(/^FAIL/m);
  expect(result.code).toBe(0);
}, 240_000);

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
