import { lineChart, timeline } from '../../client/web/charts';
import { modelPage, overviewPage, pageFile, runPage } from '../../client/web/pages';
import { routeOf } from '../../client/web/site';
import type { ModelPage } from '../../client/web/data';

/** The registry pages without a database: routes, escaping, charts from the figures given. */

const ctx = { temporalUi: 'http://ui:8233', namespace: 'prod', generatedAt: new Date('2026-12-01T12:00:00Z') };
const hostile = '<script>alert(1)</script>';

const page: ModelPage = {
  model: {
    name: 'm1',
    description: hostile,
    createdAt: '2026-12-01T10:00:00Z',
    aliases: { production: 1 },
    versions: [
      { version: 1, status: 'registered', createdAt: '2026-12-01T10:00:00Z', aliases: ['production'], metrics: { auc: 0.71234, logLoss: 0.5 }, rejectionReasons: [], trainingWorkflowId: 'ct-1' },
      { version: 2, status: 'rejected', createdAt: '2026-12-01T11:00:00Z', aliases: [], metrics: { auc: 0.6 }, rejectionReasons: [`auc below champion ${hostile}`] },
    ],
  },
  history: [
    { alias: 'production', version: 1, from: null, validFrom: '2026-12-01T10:00:00Z', validUntil: null, kind: 'promote', endedBy: null, movedBy: 'promotion-m1', reason: hostile, details: {} },
  ],
  monitoring: [
    { windowEnd: new Date('2026-12-01T10:30:00Z'), version: 1, level: 'ok', breach: false, rows: 900, labeledRows: 0, predictionPsi: 0.01, maxFeaturePsi: 0.02, maxFeature: 'hour', onlineAuc: null },
    { windowEnd: new Date('2026-12-01T11:30:00Z'), version: 1, level: 'act', breach: true, rows: 800, labeledRows: 400, predictionPsi: 0.4, maxFeaturePsi: 1.2, maxFeature: 'distance', onlineAuc: 0.61 },
  ],
  runs: [],
};

test('flat page names round-trip through the router; a model named like a version page cannot collide', () => {
  expect(routeOf('/')).toEqual({ kind: 'index' });
  expect(routeOf(`/${pageFile.model('foo-v2')}`)).toEqual({ kind: 'model', name: 'foo-v2' });
  expect(routeOf(`/${pageFile.version('foo', 2)}`)).toEqual({ kind: 'version', name: 'foo', version: 2 });
  expect(routeOf(`/${pageFile.run('42')}`)).toEqual({ kind: 'run', id: '42' });
  expect(routeOf('/runs.html')).toEqual({ kind: 'runs' });
  for (const bad of ['/model-../etc.html', '/model-Foo.html', '/run-x.html', '/style.css', '/model-a.v1.html/x']) expect(routeOf(bad)).toBeUndefined();
});

test('text from the store is escaped everywhere it is shown', () => {
  const html = modelPage(ctx, page) + overviewPage(ctx, [{ model: page.model, latestCheck: page.monitoring[1]!, lastRun: null }]);
  expect(html).not.toContain('<script');
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
});

test('a model page shows each version’s figures and gate reasons, and the checks over time with the breach marked', () => {
  const html = modelPage(ctx, page);
  expect(html).toMatch(/<tr data-version="1">[\s\S]*?data-field="auc">0\.7123</);
  expect(html).toMatch(/<tr data-version="2">[\s\S]*?<li>auc below champion/);
  expect(html).toContain('id="chart-drift" data-points="4"');
  expect(html).toContain('id="chart-auc" data-points="1"');
  expect((html.match(/class="mark"/g) ?? []).length).toBe(2);
  expect(html).toContain('id="alias-timeline" data-bars="1"');
});

test('charts with no data say so, a missing figure breaks the line instead of drawing 0', () => {
  expect(lineChart({ id: 'c', title: 't', series: [{ name: 's', points: [] }] })).toContain('no data yet');
  const gap = lineChart({ id: 'c', title: 't', series: [{ name: 's', points: [{ x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: null }, { x: 4, y: 1 }, { x: 5, y: 3 }] }] });
  expect((gap.match(/<polyline/g) ?? []).length).toBe(2);
  expect(gap).toContain('data-points="4"');
  expect(timeline({ id: 't', title: 't', lanes: [] })).toContain('nothing yet');
});

test('a run page links the workflow into the Temporal UI of the configured namespace', () => {
  const html = runPage(ctx, {
    run: { id: '7', workflowId: 'ct/odd id', runId: 'r1', pipeline: 'continuousTraining', model: 'm1', status: 'failed', codeVersion: 'git:abc', startedAt: new Date('2026-12-01T10:00:00Z'), finishedAt: null, steps: { failed: 1 } },
    steps: [{ name: 'train', status: 'failed', attempts: 3, worker: 'w', startedAt: new Date('2026-12-01T10:00:01Z'), finishedAt: new Date('2026-12-01T10:00:05Z'), durationMs: 4000, error: 'boom', cacheKey: null }],
    versions: [],
  });
  expect(html).toContain('href="http://ui:8233/namespaces/prod/workflows/ct%2Fodd%20id/r1/history"');
  expect(html).toMatch(/<tr data-step="train">[\s\S]*?data-field="attempts">3</);
  expect(html).toContain('boom');
});
