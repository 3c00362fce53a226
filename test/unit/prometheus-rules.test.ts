import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PROMTOOL, ensureDebianTool } from '../../infra/debian-tools';
import { createLogger } from '../../infra/log';
import { PROJECT_ROOT } from '../../infra/paths';

/** The shipped alert rules, checked and unit-tested by Debian's promtool as an operator would. */

const dir = path.join(PROJECT_ROOT, 'infra', 'prometheus');
const promtool = () => ensureDebianTool(PROMTOOL, createLogger('test'));

test('promtool check rules: the rules file is valid', () => {
  const r = spawnSync(promtool(), ['check', 'rules', 'mlops-rules.yml'], { cwd: dir, encoding: 'utf8' });
  expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
  expect(r.status).toBe(0);
});

test('promtool test rules: drift and decay fire retrain alerts for their model, errors and stuck runs page, thin evidence does not fire', () => {
  const r = spawnSync(promtool(), ['test', 'rules', 'mlops-rules.test.yml'], { cwd: dir, encoding: 'utf8' });
  expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
  expect(r.status).toBe(0);
});
