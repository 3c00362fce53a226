import { onlineMetrics, monthDrift, retrainsFrom, servingBuckets } from '../../client/demo/collect';
import type { ReportSummary } from '../../client/demo/figures';
import { summarizeReport } from '../../client/demo/figures';
import { extractDemoData, renderReport, versionColor, type DemoData } from '../../client/demo/report';
import type { TimelineEvent } from '../../client/demo/timeline';

const T0 = Date.parse('2026-11-23T06:00:00Z');
const at = (s: number) => T0 + s * 1000;
const MONTHS = ['2001-02', '2001-03', '2001-04', '2001-05', '2001-06'];
const LABELS = ['Feb', 'Mar', 'Apr', 'May', 'Jun'];

function report(s: number, version: number, o: Partial<ReportSummary> = {}): ReportSummary {
  return { at: at(s), version, level: 'ok', breach: false, rows: 2600, labeledRows: 0, maxPsi: 0.05, maxPsiFeature: 'origin', predictionPsi: 0.01, auc: null, offlineAuc: 0.62, logLoss: null, offlineLogLoss: 0.5, calibrationGap: null, reasons: [], ...o };
}

function event(s: number, month: string | null, kind: string, o: Partial<TimelineEvent> = {}): TimelineEvent {
  return { at: at(s), t: s, month, kind, detail: kind, ...o };
}

function fixture(): DemoData {
  const reports = [
    report(30, 1),
    report(60, 1, { labeledRows: 3000, auc: 0.6, logLoss: 0.56, calibrationGap: 0.06, breach: true, level: 'act', maxPsi: 0.08, reasons: ['calibration gap 6.0% > 5.0%'] }),
    report(100, 2, { maxPsi: 0.12, maxPsiFeature: 'destination', predictionPsi: 0.03 }),
    report(140, 2, { maxPsi: 0.04 }),
    report(190, 2, { maxPsi: 0.21, level: 'act', breach: true }),
  ];
  const events: TimelineEvent[] = [
    event(5, null, 'trigger', { source: 'demo', detail: 'demo: initial model' }),
    event(8, null, 'training-finished', { version: 1, auc: 0.62 }),
    event(61, '2001-03', 'trigger', { source: 'monitoring', detail: 'monitoring v1: calibration gap' }),
    event(70, '2001-03', 'training-finished', { version: 2, auc: 0.64 }),
    event(80, '2001-03', 'production', { version: 2 }),
    event(191, '2001-06', 'trigger', { source: 'monitoring', detail: 'monitoring v2: origin PSI <script>' }),
    event(195, '2001-06', 'duplicate-dropped', { source: 'monitoring' }),
    event(200, '2001-06', 'coalesced', { source: 'monitoring', detail: 'joins the follow-up' }),
  ];
  const served = [];
  for (let s = 10; s < 210; s += 2) {
    const month = MONTHS[Math.min(4, Math.floor((s - 10) / 40))]!;
    served.push({ at: at(s), month, requestId: `r${s}`, rows: 25, version: s < 75 ? 1 : s < 80 ? 2 : 2, ok: true, ms: 1 });
    if (s >= 70 && s < 80) served.push({ at: at(s), month, requestId: `c${s}`, rows: 25, version: 1, ok: true, ms: 1 });
  }
  const windows = MONTHS.map((m, i) => ({ month: m, start: at(10 + 40 * i), end: at(50 + 40 * i) }));
  return {
    model: 'flights-delay',
    generatedAt: '2026-11-23T06:04:00.000Z',
    startedAt: T0,
    finishedAt: at(230),
    uiUrl: 'http://127.0.0.1:8233',
    options: { rows: 3000, monthSeconds: 40 },
    thresholds: { psiWarn: 0.1, psiAct: 0.2 },
    months: MONTHS.map((m, i) => ({
      month: m,
      label: LABELS[i]!,
      sampledRows: 3000,
      servedRows: 3000,
      fullRows: 500_000,
      fullPositiveRate: [0.233, 0.21, 0.179, 0.161, 0.213][i]!,
      start: windows[i]!.start,
      end: windows[i]!.end,
      online: onlineMetrics(Array.from({ length: 200 }, (_, k) => ({ p: (k % 10) / 10 + 0.05, y: k % 10 >= 7 - i ? 1 : 0 }))),
      drift: monthDrift(reports, windows[i]!.start, windows[i]!.end, 2500),
      versions: (i === 0 ? { '1': 3000 } : { '1': 500, '2': 2500 }) as Record<string, number>,
    })),
    versions: [
      { version: 1, status: 'registered', auc: 0.62, logLoss: 0.5, trainedOn: 'flights 2001-01', createdAt: at(8), firstServedAt: at(10), promotedAt: at(9) },
      { version: 2, status: 'registered', auc: 0.64, logLoss: 0.48, trainedOn: 'flights-2001-02.parquet', createdAt: at(70), firstServedAt: at(70), promotedAt: at(80) },
    ],
    serving: servingBuckets(served, T0, windows),
    reports,
    retrains: retrainsFrom(events),
    events,
    notes: ['Traffic is sampled: 3000 rows per month.'],
  };
}

describe('demo report', () => {
  const data = fixture();
  const html = renderReport(data);

  test('is one self-contained HTML file: no external scripts, styles or fonts', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1|www\.w3\.org\/2000\/svg)/);
    // The only script is the data, which a browser does not run.
    expect([...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual(['<script type="application/json" id="demo-data">']);
  });

  test('embeds the data as JSON that reads back equal, with markup in strings escaped', () => {
    const back = extractDemoData(html);
    expect(back).toEqual(JSON.parse(JSON.stringify(data)));
    expect(html).not.toContain('origin PSI <script>');
    expect(html).toContain('origin PSI &lt;script&gt;');
  });

  test('has the four metric charts with one point per month and value', () => {
    for (const id of ['auc-chart', 'logloss-chart', 'calibration-chart', 'drift-chart']) expect(html).toContain(`<svg id="${id}"`);
    const points = (chart: string, series: string) => {
      const svg = new RegExp(`<svg id="${chart}"[\\s\\S]*?</svg>`).exec(html)![0];
      return [...svg.matchAll(new RegExp(`class="point" data-series="${series}" data-category="(\\w+)" data-value="([^"]+)"`, 'g'))].map((m) => [m[1], Number(m[2])]);
    };
    expect(points('auc-chart', 'online AUC')).toEqual(data.months.map((m) => [m.label, m.online!.auc]));
    expect(points('drift-chart', 'max feature PSI').map(([c]) => c)).toEqual(data.months.filter((m) => m.drift.maxFeaturePsi !== null).map((m) => m.label));
    expect(points('drift-chart', 'max feature PSI').map(([, v]) => v)).toEqual(data.months.filter((m) => m.drift.maxFeaturePsi !== null).map((m) => m.drift.maxFeaturePsi));
    expect(points('calibration-chart', 'whole month')).toEqual(data.months.map((m) => [m.label, m.fullPositiveRate]));
  });

  test('the serving chart stacks each bucket to 100% in the versions that served it, and marks monitoring retrains', () => {
    const svg = /<svg id="serving-chart"[\s\S]*?<\/svg>/.exec(html)![0];
    const bands = [...svg.matchAll(/<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)" fill="([^"]+)" class="band" shape-rendering="crispEdges" data-version="(\d+)" data-t="(\d+)"/g)];
    expect(bands.length).toBeGreaterThan(0);
    const byT = new Map<string, number>();
    for (const b of bands) {
      expect(b[3]).toBe(versionColor(Number(b[4])));
      byT.set(b[5]!, (byT.get(b[5]!) ?? 0) + Number(b[2]));
    }
    const heights = [...byT.values()];
    for (const h of heights) expect(h).toBeCloseTo(heights[0]!, 0);
    expect(new Set(bands.map((b) => b[4]))).toEqual(new Set(['1', '2']));
    expect([...svg.matchAll(/class="retrain" data-source="(\w+)"/g)].map((m) => m[1])).toEqual(['demo', 'monitoring', 'monitoring', 'monitoring']);
  });

  test('tables: one row per month, per version and per event', () => {
    const rows = (id: string) => new RegExp(`<table id="${id}">[\\s\\S]*?</table>`).exec(html)![0].match(/<tr>/g)!.length - 1;
    expect(rows('months-table')).toBe(5);
    expect(rows('versions-table')).toBe(2);
    expect(rows('events-table')).toBe(data.events.length);
  });
});

describe('demo figures', () => {
  test('online metrics: AUC, log loss, rates and the calibration gap', () => {
    const m = onlineMetrics([
      { p: 0.9, y: 1 },
      { p: 0.8, y: 1 },
      { p: 0.3, y: 0 },
      { p: 0.1, y: 0 },
    ])!;
    expect(m.auc).toBe(1);
    expect(m.positiveRate).toBe(0.5);
    expect(m.meanPrediction).toBeCloseTo(0.525, 10);
    expect(m.calibrationGap).toBeCloseTo(0.025, 10);
    expect(m.logLoss).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8) + Math.log(0.7) + Math.log(0.9)) / 4, 10);
    expect(onlineMetrics([])).toBeNull();
    expect(onlineMetrics([{ p: 0.2, y: 0 }])!.auc).toBeNull();
  });

  test('month drift takes the highest figures of the reports inside the month judged on enough rows', () => {
    const d = monthDrift(
      [
        report(10, 1, { maxPsi: 0.3, level: 'insufficient-data' }),
        report(15, 1, { maxPsi: 4, rows: 400, labeledRows: 3000 }),
        report(20, 1, { maxPsi: 0.07, predictionPsi: 0.02 }),
        report(30, 1, { maxPsi: 0.12, maxPsiFeature: 'hour', breach: true }),
        report(99, 1, { maxPsi: 0.5 }),
      ],
      at(0),
      at(50),
      2500,
    );
    expect(d).toEqual({ maxFeaturePsi: 0.12, maxFeature: 'hour', predictionPsi: 0.02, reports: 2, breaches: 1 });
  });

  test('a monitoring report row is summarised; the calibration gap is |positive rate − mean prediction|', () => {
    const s = summarizeReport(
      {
        version: 3,
        rows: 2600,
        labeledRows: 3000,
        level: 'act',
        breach: true,
        reasons: ['x'],
        features: { hour: { psi: 0.01 }, origin: { psi: 0.09 } },
        prediction: { psi: 0.04 },
        performance: { auc: 0.6, logLoss: 0.55, positiveRate: 0.16, meanPrediction: 0.21, offlineAuc: 0.63, offlineLogLoss: 0.5 },
      },
      at(1),
      null,
    )!;
    expect(s).toMatchObject({ version: 3, maxPsi: 0.09, maxPsiFeature: 'origin', predictionPsi: 0.04, auc: 0.6, offlineAuc: 0.63 });
    expect(s.calibrationGap).toBeCloseTo(0.05, 10);
    expect(summarizeReport('not a report', at(1), null)).toBeNull();
  });
});
