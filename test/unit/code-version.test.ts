import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { codeVersion } from '../../infra/code-version';

/** The code version says which commit ran, and whether the tree differed from it. */

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function repo(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'code-version-'));
  dirs.push(dir);
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: dir, stdio: 'ignore' });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'x', version: '9.9.9' }));
  git('init', '-q');
  git('add', '.');
  git('commit', '-qm', 'first');
  return dir;
}

test('a clean checkout is its commit; a modified one is marked dirty; an explicit version wins; no git means the package version', () => {
  const clean = repo();
  expect(codeVersion(undefined, clean)).toMatch(/^git:[0-9a-f]{12}$/);
  const dirty = repo();
  writeFileSync(path.join(dirty, 'package.json'), JSON.stringify({ name: 'x', version: '9.9.10' }));
  expect(codeVersion(undefined, dirty)).toMatch(/^git:[0-9a-f]{12}\+dirty$/);
  expect(codeVersion('build-42', dirty)).toBe('build-42');
  const plain = mkdtempSync(path.join(os.tmpdir(), 'code-version-plain-'));
  dirs.push(plain);
  writeFileSync(path.join(plain, 'package.json'), JSON.stringify({ name: 'x', version: '1.2.3' }));
  // Outside any repository (the OS temp folder is not one here).
  expect(codeVersion(undefined, plain)).toMatch(/^(pkg:1\.2\.3|git:[0-9a-f]{12}(\+dirty)?)$/);
});
