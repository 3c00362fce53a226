import { modelView } from '../../client/commands/models';

/** `mlops models`: each version's figure is its task's primary metric. */

test('mlops models shows AUC, RMSE or macro-F1 by the version\'s task', () => {
  const version = (v: number, extra: { task?: 'regression' | 'multiclass'; metrics: Record<string, number> }) => ({ version: v, status: 'registered' as const, createdAt: '2026-12-03T10:00:00.000Z', aliases: [], rejectionReasons: [], ...extra });
  const text = modelView({
    name: 'm',
    description: null,
    createdAt: '2026-12-03T09:00:00.000Z',
    aliases: {},
    versions: [
      version(1, { metrics: { auc: 0.71234, logLoss: 0.5 } }),
      version(2, { task: 'regression', metrics: { rmse: 12.5 } }),
      version(3, { task: 'multiclass', metrics: { macroF1: 0.6, logLoss: 0.9 } }),
      version(4, { task: 'multiclass', metrics: {} }),
    ],
  });
  const lines = text.split('\n');
  expect(lines[1]).toMatch(/\bmetric\b/);
  expect(lines.find((l) => l.includes('v1 '))).toContain('AUC 0.7123');
  expect(lines.find((l) => l.includes('v2 '))).toContain('RMSE 12.5000');
  expect(lines.find((l) => l.includes('v3 '))).toMatch(/macro-F1 0\.6000\s+0\.9000/);
  expect(lines.find((l) => l.includes('v4 '))).toContain('macro-F1 -');
});
