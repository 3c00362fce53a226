import type { ReportSummary } from './figures';
import type { TimelineEvent } from './timeline';

/**
 * The demo's HTML report: one self-contained file (inline CSS and SVG, no script but the data),
 * with the figures as JSON in <script type="application/json" id="demo-data"> so that tests and
 * other tools read exactly what the charts show. Pure: data in, HTML out.
 */

export interface OnlineMetrics {
  labeledRows: number;
  auc: number | null;
  logLoss: number | null;
  positiveRate: number | null;
  meanPrediction: number | null;
  calibrationGap: number | null;
}

export interface MonthFigures {
  month: string;
  label: string;
  /** Rows sampled from the month for the replay. */
  sampledRows: number;
  /** Rows the model server answered for the month (sample plus any extra traffic). */
  servedRows: number;
  fullRows: number;
  fullPositiveRate: number;
  start: number;
  end: number;
  online: OnlineMetrics | null;
  drift: { maxFeaturePsi: number | null; maxFeature: string | null; predictionPsi: number | null; reports: number; breaches: number };
  /** Rows served per version, e.g. {"1": 2500, "2": 500}. */
  versions: Record<string, number>;
}

export interface VersionInfo {
  version: number;
  status: string;
  auc: number | null;
  logLoss: number | null;
  trainedOn: string;
  createdAt: number;
  firstServedAt: number | null;
  promotedAt: number | null;
}

export interface ServingBucket {
  /** Seconds since the demo started. */
  t: number;
  month: string | null;
  counts: Record<string, number>;
}

export interface RetrainTrigger {
  at: number;
  t: number;
  source: string;
  detail: string;
}

export interface DemoData {
  model: string;
  generatedAt: string;
  startedAt: number;
  finishedAt: number;
  uiUrl: string;
  options: Record<string, unknown>;
  thresholds: Record<string, unknown>;
  months: MonthFigures[];
  versions: VersionInfo[];
  serving: { bucketSeconds: number; buckets: ServingBucket[] };
  reports: ReportSummary[];
  retrains: RetrainTrigger[];
  events: TimelineEvent[];
  notes: string[];
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const versionColor = (v: number): string => PALETTE[(v - 1) % PALETTE.length]!;

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const f3 = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(3));
const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)}%`);

interface Series {
  name: string;
  color: string;
  values: Array<number | null>;
  dashed?: boolean;
}

/** A line chart over categories (months), with optional horizontal reference lines. */
export function lineChart(opts: { id: string; title: string; categories: string[]; series: Series[]; refLines?: Array<{ value: number; label: string }>; yMin?: number; yMax?: number; width?: number; height?: number }): string {
  const W = opts.width ?? 560;
  const H = opts.height ?? 260;
  const m = { l: 52, r: 16, t: 30, b: 50 };
  const all = [...opts.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v))), ...(opts.refLines ?? []).map((r) => r.value)];
  let lo = opts.yMin ?? (all.length ? Math.min(...all) : 0);
  let hi = opts.yMax ?? (all.length ? Math.max(...all) : 1);
  if (hi - lo < 1e-9) {
    hi += 0.05;
    lo -= 0.05;
  }
  const pad = (hi - lo) * 0.08;
  if (opts.yMin === undefined) lo -= pad;
  if (opts.yMax === undefined) hi += pad;
  const n = opts.categories.length;
  const x = (i: number) => m.l + (n <= 1 ? (W - m.l - m.r) / 2 : (i * (W - m.l - m.r)) / (n - 1));
  const y = (v: number) => m.t + (1 - (v - lo) / (hi - lo)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<text x="${m.l}" y="18" class="title">${esc(opts.title)}</text>`);
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/><text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" class="tick" text-anchor="end">${v.toFixed(3)}</text>`);
  }
  opts.categories.forEach((c, i) => parts.push(`<text x="${x(i).toFixed(1)}" y="${H - m.b + 16}" class="tick" text-anchor="middle">${esc(c)}</text>`));
  (opts.refLines ?? []).forEach((r, i) => {
    // Labels alternate ends so that close reference lines do not print over each other.
    const lx = i % 2 ? m.l + 4 : W - m.r - 2;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(r.value).toFixed(1)}" y2="${y(r.value).toFixed(1)}" class="ref"/><text x="${lx}" y="${(y(r.value) - 3).toFixed(1)}" class="reflabel" text-anchor="${i % 2 ? 'start' : 'end'}">${esc(r.label)}</text>`);
  });
  for (const s of opts.series) {
    const pts = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : [x(i), y(v)] as const));
    let d = '';
    let pen = false;
    for (const p of pts) {
      if (!p) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)}`;
      pen = true;
    }
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''} class="series" data-series="${esc(s.name)}"/>`);
    pts.forEach((p, i) => {
      if (p) parts.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="3.5" fill="${s.color}" class="point" data-series="${esc(s.name)}" data-category="${esc(opts.categories[i]!)}" data-value="${s.values[i]}"><title>${esc(s.name)} ${esc(opts.categories[i]!)}: ${f3(s.values[i])}</title></circle>`);
    });
  }
  const legend = opts.series.map((s, i) => `<g transform="translate(${m.l + i * 150},${H - 14})"><line x1="0" x2="18" y1="-4" y2="-4" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/><text x="24" y="0" class="tick">${esc(s.name)}</text></g>`);
  return `<svg id="${esc(opts.id)}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(opts.title)}">${parts.join('')}${legend.join('')}</svg>`;
}

/** Which version answered traffic over time: stacked shares per time bucket, months marked. */
export function servingChart(data: DemoData, width = 1160, height = 240): string {
  const m = { l: 52, r: 16, t: 30, b: 46 };
  const buckets = data.serving.buckets;
  const parts: string[] = [`<text x="${m.l}" y="18" class="title">Which version served when (share of answered rows per ${data.serving.bucketSeconds}s)</text>`];
  if (!buckets.length) return `<svg id="serving-chart" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}<text x="${m.l}" y="60" class="tick">no traffic recorded</text></svg>`;
  const t0 = Math.min(...buckets.map((b) => b.t), ...data.months.map((mo) => (mo.start - data.startedAt) / 1000));
  const t1 = Math.max(...buckets.map((b) => b.t + data.serving.bucketSeconds), ...data.months.map((mo) => (mo.end - data.startedAt) / 1000));
  const x = (t: number) => m.l + ((t - t0) / Math.max(1e-9, t1 - t0)) * (width - m.l - m.r);
  const y = (share: number) => m.t + (1 - share) * (height - m.t - m.b);
  const bw = Math.max(1, x(t0 + data.serving.bucketSeconds) - x(t0));
  for (const b of buckets) {
    const total = Object.values(b.counts).reduce((a, c) => a + c, 0);
    if (!total) continue;
    let acc = 0;
    for (const v of Object.keys(b.counts).map(Number).sort((a, c) => a - c)) {
      const share = b.counts[String(v)]! / total;
      parts.push(`<rect x="${x(b.t).toFixed(1)}" y="${y(acc + share).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(acc) - y(acc + share)).toFixed(1)}" fill="${versionColor(v)}" class="band" shape-rendering="crispEdges" data-version="${v}" data-t="${b.t}"/>`);
      acc += share;
    }
  }
  for (const mo of data.months) {
    const xs = x((mo.start - data.startedAt) / 1000);
    const xe = x((mo.end - data.startedAt) / 1000);
    parts.push(`<line x1="${xs.toFixed(1)}" x2="${xs.toFixed(1)}" y1="${m.t}" y2="${height - m.b}" class="month"/><text x="${((xs + xe) / 2).toFixed(1)}" y="${height - m.b + 16}" class="tick" text-anchor="middle">${esc(mo.label)}</text>`);
  }
  for (const r of data.retrains) {
    const xr = x(r.t);
    parts.push(`<path d="M${xr.toFixed(1)},${m.t - 2} l-5,-8 h10 z" fill="${r.source === 'monitoring' ? '#d62728' : '#555'}" class="retrain" data-source="${esc(r.source)}"><title>retrain asked by ${esc(r.source)} at +${r.t.toFixed(0)}s: ${esc(r.detail)}</title></path>`);
  }
  for (const k of [0, 0.5, 1]) parts.push(`<text x="${m.l - 6}" y="${(y(k) + 4).toFixed(1)}" class="tick" text-anchor="end">${k * 100}%</text>`);
  parts.push(`<text x="${width - m.r}" y="${height - 8}" class="tick" text-anchor="end">seconds since start →  ▼ retrain asked (red: by monitoring)</text>`);
  const versions = [...new Set(buckets.flatMap((b) => Object.keys(b.counts).map(Number)))].sort((a, b) => a - b);
  versions.forEach((v, i) => parts.push(`<g transform="translate(${m.l + i * 70},${height - 8})"><rect x="0" y="-10" width="12" height="12" fill="${versionColor(v)}"/><text x="16" y="0" class="tick">v${v}</text></g>`));
  return `<svg id="serving-chart" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="versions serving over time">${parts.join('')}</svg>`;
}

function table(head: string[], rows: string[][], id: string): string {
  return `<table id="${id}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

const clock = (data: DemoData, t: number) => {
  const s = Math.max(0, Math.round((t - data.startedAt) / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

/** `registryHref`: the static export of the registry pages beside the report (models, versions, alias history, lineage, runs). */
export function renderReport(data: DemoData, opts: { registryHref?: string } = {}): string {
  const cats = data.months.map((m) => m.label);
  const psiAct = typeof data.thresholds.psiAct === 'number' ? data.thresholds.psiAct : 0.2;
  const psiWarn = typeof data.thresholds.psiWarn === 'number' ? data.thresholds.psiWarn : 0.1;
  const charts = [
    lineChart({ id: 'auc-chart', title: 'Online AUC per month (labelled replayed rows)', categories: cats, series: [{ name: 'online AUC', color: '#4e79a7', values: data.months.map((m) => m.online?.auc ?? null) }] }),
    lineChart({ id: 'logloss-chart', title: 'Online log loss per month', categories: cats, series: [{ name: 'log loss', color: '#e15759', values: data.months.map((m) => m.online?.logLoss ?? null) }] }),
    lineChart({
      id: 'calibration-chart',
      title: 'Delay rate vs mean predicted probability',
      categories: cats,
      series: [
        { name: 'positive rate (served)', color: '#59a14f', values: data.months.map((m) => m.online?.positiveRate ?? null) },
        { name: 'mean prediction', color: '#f28e2b', values: data.months.map((m) => m.online?.meanPrediction ?? null) },
        { name: 'whole month', color: '#999999', dashed: true, values: data.months.map((m) => m.fullPositiveRate) },
      ],
    }),
    lineChart({
      id: 'drift-chart',
      title: 'Drift per month (highest over the month’s monitoring reports)',
      categories: cats,
      yMin: 0,
      series: [
        { name: 'max feature PSI', color: '#b07aa1', values: data.months.map((m) => m.drift.maxFeaturePsi) },
        { name: 'prediction PSI', color: '#76b7b2', values: data.months.map((m) => m.drift.predictionPsi) },
      ],
      refLines: [
        { value: psiWarn, label: `warn ${psiWarn}` },
        { value: psiAct, label: `act ${psiAct}` },
      ],
    }),
  ];
  const monthsTable = table(
    ['month', 'rows sampled / served / labelled', 'whole-month delay rate', 'online AUC', 'log loss', 'positive rate', 'mean prediction', 'calibration gap', 'max feature PSI', 'prediction PSI', 'reports (breaches)', 'rows per version'],
    data.months.map((m) => [
      esc(m.label),
      `${m.sampledRows} / ${m.servedRows} / ${m.online?.labeledRows ?? 0}`,
      `${pct(m.fullPositiveRate)} of ${m.fullRows.toLocaleString('en-US')}`,
      f3(m.online?.auc),
      f3(m.online?.logLoss),
      pct(m.online?.positiveRate),
      pct(m.online?.meanPrediction),
      f3(m.online?.calibrationGap),
      `${f3(m.drift.maxFeaturePsi)}${m.drift.maxFeature ? ` (${esc(m.drift.maxFeature)})` : ''}`,
      f3(m.drift.predictionPsi),
      `${m.drift.reports} (${m.drift.breaches})`,
      Object.entries(m.versions)
        .map(([v, n]) => `<span class="chip" style="background:${versionColor(Number(v))}">v${esc(v)}</span> ${n}`)
        .join(' '),
    ]),
    'months-table',
  );
  const versionsTable = table(
    ['version', 'status', 'offline AUC', 'offline log loss', 'trained on', 'registered', 'first served', 'production from'],
    data.versions.map((v) => [
      `<span class="chip" style="background:${versionColor(v.version)}">v${v.version}</span>`,
      esc(v.status),
      f3(v.auc),
      f3(v.logLoss),
      esc(v.trainedOn),
      clock(data, v.createdAt),
      v.firstServedAt ? clock(data, v.firstServedAt) : '–',
      v.promotedAt ? clock(data, v.promotedAt) : '–',
    ]),
    'versions-table',
  );
  const eventsTable = table(
    ['time', 'month', 'event', 'version', 'source', 'detail', 'AUC', 'PSI'],
    data.events.map((e) => [
      clock(data, e.at),
      esc(e.month ? (data.months.find((m) => m.month === e.month)?.label ?? e.month) : '—'),
      `<span class="${/BREACH|trigger/.test(e.kind) ? 'hot' : ''}">${esc(e.kind)}</span>`,
      e.version !== undefined ? `v${e.version}` : '',
      esc(e.source ?? ''),
      esc(e.detail),
      f3(e.auc),
      f3(e.psi),
    ]),
    'events-table',
  );
  const monitoringRetrains = data.retrains.filter((r) => r.source === 'monitoring').length;
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>temporal-mlops demo — ${esc(data.model)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666}.grid2{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
.chart{max-width:100%;height:auto;background:#fff;border:1px solid #e5e5e5;border-radius:6px}
.chart .title{font-size:13px;font-weight:600;fill:#333}.chart .tick,.chart .reflabel{font-size:11px;fill:#555}
.chart .grid{stroke:#eee}.chart .ref{stroke:#d62728;stroke-dasharray:4 3}.chart .reflabel{fill:#d62728}.chart .month{stroke:#999;stroke-dasharray:2 3}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600}.chip{display:inline-block;color:#fff;border-radius:3px;padding:0 5px;font-size:11px;font-weight:600}
.hot{color:#c0392b;font-weight:600}.kpi{display:flex;gap:24px;margin:12px 0}.kpi div{background:#f6f8fa;border-radius:6px;padding:8px 14px}.kpi b{font-size:20px;display:block}
ul.notes{color:#444}
</style></head><body>
<h1>temporal-mlops demo — ${esc(data.model)}</h1>${opts.registryHref ? `
<p><a id="registry-link" href="${esc(opts.registryHref)}">The registry after the demo</a>: every model, version and gate, the alias history, lineage, monitoring over time and each pipeline run (the same pages <code>mlops ui</code> serves).</p>` : ''}
<div class="sub">Generated ${esc(data.generatedAt)} · ${data.months.length} months replayed (${esc(data.months.map((m) => m.label).join(', '))}) · ${esc(String(data.options.rows ?? ''))} sampled rows per month · run took ${Math.round((data.finishedAt - data.startedAt) / 1000)} s · Temporal Web UI was ${esc(data.uiUrl)}</div>
<div class="kpi"><div><b>${data.versions.length}</b>versions registered</div><div><b>${data.versions.filter((v) => v.promotedAt).length}</b>reached production</div><div><b>${monitoringRetrains}</b>retrains asked by monitoring</div><div><b>${data.reports.length}</b>monitoring reports (${data.reports.filter((r) => r.breach).length} breaches)</div></div>
<h2>Which version served when</h2>
${servingChart(data)}
<h2>Online metrics per month</h2>
<div class="grid2">${charts.join('\n')}</div>
${monthsTable}
<h2>Versions</h2>
${versionsTable}
<h2>Timeline</h2>
${eventsTable}
<h2>Notes</h2>
<ul class="notes">${data.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>
<script type="application/json" id="demo-data">${json}</script>
</body></html>
`;
}

/** Reads the embedded data back out of a report (tests, tools). */
export function extractDemoData(html: string): DemoData {
  const m = /<script type="application\/json" id="demo-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no demo-data script in the report');
  return JSON.parse(m[1]!) as DemoData;
}
