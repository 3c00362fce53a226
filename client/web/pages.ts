import { esc, lineChart, timeline, type Lane } from './charts';
import type { ModelPage, ModelSummary, MonitoringPoint, RunPage, RunSummary, VersionPage } from './data';

/**
 * The registry's pages as HTML: models, a model (versions, alias history, monitoring over time,
 * runs), a version (metrics, gates, lineage), pipeline runs and a run's steps. Pure: data in,
 * one self-contained page out (inline CSS and SVG, no script, no external asset), so the server
 * and the static export are the same pages. Links are flat file names that both serve.
 * Every figure that matters carries `data-field` (and its subject) so a test reads exactly what
 * a person sees.
 */

export interface SiteContext {
  /** Temporal Web UI base URL (links to every workflow). */
  temporalUi: string;
  namespace: string;
  generatedAt: Date;
  /** The static export says so in its footer. */
  exported?: boolean;
}

export const pageFile = {
  index: () => 'index.html',
  model: (name: string) => `model-${name}.html`,
  version: (name: string, v: number) => `model-${name}.v${v}.html`,
  runs: () => 'runs.html',
  run: (id: string) => `run-${id}.html`,
};

const CSS = `
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:10px 24px;display:flex;gap:24px;align-items:baseline}header a{color:#f9fafb;text-decoration:none}header b{font-size:16px}
main{padding:16px 24px;max-width:1200px}h1{font-size:20px;margin:8px 0 4px}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
table{border-collapse:collapse;background:#fff;width:100%;margin:4px 0 8px}th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f4f6;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#6b7280}.small{font-size:12px}code{font-size:12px;background:#f3f4f6;padding:1px 4px;border-radius:3px;word-break:break-all}
.pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;background:#e5e7eb}.ok,.succeeded,.registered,.promote,.promoted{background:#d1fae5}.warn,.running,.cached,.candidate{background:#fef3c7}.act,.failed,.rejected,.error,.rollback,.revert{background:#fee2e2}
.insufficient-data,.skipped,.pending{background:#e5e7eb}.production{background:#dbeafe}.staging{background:#ede9fe}
figure.chart{background:#fff;border:1px solid #e5e7eb;margin:8px 0;padding:8px}figcaption{font-weight:600;margin-bottom:4px}.key{font-weight:400;margin-left:12px}.key i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
svg .grid{stroke:#e5e7eb}svg .tick,svg .lane{font-size:11px;fill:#6b7280}svg .threshold{stroke:#dc2626;stroke-dasharray:4 3}svg .threshold-label{font-size:11px;fill:#dc2626}svg .mark{stroke:#dc2626;stroke-width:1.5;opacity:.6}svg .bar-label{font-size:11px;fill:#fff}
.empty{color:#6b7280;font-style:italic}footer{padding:16px 24px;color:#6b7280;font-size:12px}ul.reasons{margin:0;padding-left:18px}
`;

const fixed = (x: number | null | undefined, digits = 4) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');
const when = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString().replace('T', ' ').slice(0, 19) : '—');
const pill = (text: string, cls = text) => `<span class="pill ${esc(cls)}">${esc(text)}</span>`;
const seconds = (ms: number | null | undefined) => (typeof ms === 'number' ? (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`) : '—');

function temporalLink(ctx: SiteContext, workflowId: string, runId?: string): string {
  const url = `${ctx.temporalUi.replace(/\/$/, '')}/namespaces/${encodeURIComponent(ctx.namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${encodeURIComponent(runId)}` : ''}/history`;
  return `<a class="temporal" href="${esc(url)}" target="_blank" rel="noopener">Temporal UI ↗</a>`;
}

function layout(ctx: SiteContext, title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)} · temporal-mlops registry</title><style>${CSS}</style></head>
<body><header><b><a href="${pageFile.index()}">temporal-mlops registry</a></b><a href="${pageFile.index()}">Models</a><a href="${pageFile.runs()}">Pipeline runs</a></header>
<main>${body}</main><footer>${ctx.exported ? 'Static export' : 'Read-only view'} of the metadata store at ${esc(when(ctx.generatedAt))} UTC · namespace ${esc(ctx.namespace)}</footer></body></html>`;
}

function runRow(ctx: SiteContext, r: RunSummary, withModel = true): string {
  const took = r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null;
  const steps = Object.entries(r.steps)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  return `<tr data-run="${esc(r.id)}"><td><a href="${pageFile.run(r.id)}">${esc(r.workflowId)}</a></td><td>${esc(r.pipeline)}</td>${withModel ? `<td>${r.model ? `<a href="${pageFile.model(r.model)}">${esc(r.model)}</a>` : '—'}</td>` : ''}<td data-field="status">${pill(r.status)}</td><td>${esc(when(r.startedAt))}</td><td class="num">${esc(seconds(took))}</td><td class="small">${esc(steps || '—')}</td><td>${temporalLink(ctx, r.workflowId, r.runId)}</td></tr>`;
}

function runsTable(ctx: SiteContext, runs: RunSummary[], withModel = true): string {
  if (!runs.length) return '<p class="empty">no pipeline runs yet</p>';
  return `<table class="runs"><tr><th>Workflow</th><th>Pipeline</th>${withModel ? '<th>Model</th>' : ''}<th>Status</th><th>Started</th><th>Took</th><th>Steps</th><th></th></tr>${runs.map((r) => runRow(ctx, r, withModel)).join('')}</table>`;
}

export function overviewPage(ctx: SiteContext, models: ModelSummary[]): string {
  const rows = models
    .map(({ model: m, latestCheck: c, lastRun }) => {
      const registered = m.versions.filter((v) => v.status === 'registered').length;
      return `<tr data-model="${esc(m.name)}"><td><a href="${pageFile.model(m.name)}">${esc(m.name)}</a><div class="muted small">${esc(m.description ?? '')}</div></td>
<td class="num" data-field="versions">${m.versions.length}</td><td class="num" data-field="registered">${registered}</td>
<td data-field="production">${m.aliases.production !== undefined ? `<a href="${pageFile.version(m.name, m.aliases.production)}">v${m.aliases.production}</a>` : '—'}</td>
<td data-field="staging">${m.aliases.staging !== undefined ? `v${m.aliases.staging}` : '—'}</td><td data-field="candidate">${m.aliases.candidate !== undefined ? `v${m.aliases.candidate}` : '—'}</td>
<td data-field="monitoring">${c ? `${pill(c.level)} <span class="small muted">${esc(when(c.windowEnd))}</span>` : '—'}</td>
<td>${lastRun ? `${pill(lastRun.status)} <a class="small" href="${pageFile.run(lastRun.id)}">${esc(lastRun.pipeline)}</a>` : '—'}</td></tr>`;
    })
    .join('');
  const body = models.length
    ? `<h1>Models</h1><table class="models"><tr><th>Model</th><th>Versions</th><th>Registered</th><th>Production</th><th>Staging</th><th>Candidate</th><th>Latest monitoring</th><th>Latest run</th></tr>${rows}</table>`
    : '<h1>Models</h1><p class="empty">The registry holds no model yet: train one (mlops train …).</p>';
  return layout(ctx, 'Models', body);
}

function versionsTable(page: ModelPage): string {
  const m = page.model;
  const rows = [...m.versions]
    .reverse()
    .map(
      (v) => `<tr data-version="${v.version}"><td><a href="${pageFile.version(m.name, v.version)}">v${v.version}</a></td><td data-field="status">${pill(v.status)}</td>
<td>${v.aliases.map((a) => pill(a)).join(' ') || '—'}</td><td class="num" data-field="auc">${fixed(v.metrics.auc)}</td><td class="num" data-field="logLoss">${fixed(v.metrics.logLoss)}</td>
<td class="num" data-field="baselineAuc">${fixed(v.baselineAuc)}</td><td class="num" data-field="rows">${v.metrics.rows ?? '—'}</td><td>${esc(when(v.createdAt))}</td>
<td data-field="reasons">${v.rejectionReasons.length ? `<ul class="reasons">${v.rejectionReasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : '<span class="muted">passed</span>'}</td></tr>`,
    )
    .join('');
  return `<table class="versions"><tr><th>Version</th><th>Status</th><th>Aliases</th><th>AUC</th><th>Log loss</th><th>Baseline AUC</th><th>Test rows</th><th>Registered</th><th>Gates</th></tr>${rows}</table>`;
}

function historyTable(page: ModelPage): string {
  if (!page.history.length) return '<p class="empty">no alias has pointed anywhere yet</p>';
  const rows = [...page.history]
    .reverse()
    .map(
      (h) => `<tr data-alias="${esc(h.alias)}" data-kind="${esc(h.kind)}" data-version="${h.version}"><td>${pill(h.alias)}</td><td><a href="${pageFile.version(page.model.name, h.version)}">v${h.version}</a></td><td>${h.from === null ? '—' : `v${h.from}`}</td>
<td>${pill(h.kind)}</td><td>${esc(when(h.validFrom))}</td><td>${h.validUntil ? esc(when(h.validUntil)) : '<b>now</b>'}</td><td>${h.endedBy ? pill(h.endedBy) : '—'}</td><td class="small">${esc(h.reason ?? '')}</td><td class="small">${esc(h.movedBy ?? '')}</td></tr>`,
    )
    .join('');
  return `<table class="history"><tr><th>Alias</th><th>Version</th><th>Replaced</th><th>Moved by</th><th>From</th><th>Until</th><th>Ended by</th><th>Why</th><th>Workflow</th></tr>${rows}</table>`;
}

function aliasTimeline(page: ModelPage, now: number): string {
  const lanes: Lane[] = (['production', 'staging', 'candidate'] as const)
    .map((alias) => ({
      name: alias,
      bars: page.history
        .filter((h) => h.alias === alias)
        .map((h) => ({
          from: Date.parse(h.validFrom),
          until: h.validUntil ? Date.parse(h.validUntil) : now,
          label: `v${h.version}`,
          title: `${alias} v${h.version} (${h.kind}) ${when(h.validFrom)} → ${h.validUntil ? when(h.validUntil) : 'now'}${h.endedBy ? `, ended by ${h.endedBy}` : ''}`,
          tone: h.endedBy === 'rollback' || h.endedBy === 'revert' ? 'bad' : undefined,
        })),
    }))
    .filter((l) => l.bars.length);
  return timeline({ id: 'alias-timeline', title: 'Which version held each alias, when', lanes });
}

function monitoringCharts(points: MonitoringPoint[]): string {
  const breaches = points.filter((p) => p.breach).map((p) => ({ x: p.windowEnd.getTime(), label: `breach at ${when(p.windowEnd)} (${p.level})` }));
  const at = (f: (p: MonitoringPoint) => number | null) => points.map((p) => ({ x: p.windowEnd.getTime(), y: f(p) }));
  const drift = lineChart({
    id: 'chart-drift',
    title: 'Drift per check',
    series: [
      { name: 'prediction PSI', points: at((p) => p.predictionPsi) },
      { name: 'max feature PSI', points: at((p) => p.maxFeaturePsi) },
    ],
    thresholds: [{ y: 0.2, label: 'PSI 0.2' }],
    marks: breaches,
    yMin: 0,
  });
  const perf = lineChart({ id: 'chart-auc', title: 'Online AUC (labelled rows)', series: [{ name: 'online AUC', points: at((p) => p.onlineAuc) }], marks: breaches });
  const rows = lineChart({ id: 'chart-rows', title: 'Rows judged per check', series: [{ name: 'rows', points: at((p) => p.rows) }, { name: 'labelled rows', points: at((p) => p.labeledRows) }], yMin: 0 });
  return drift + perf + rows;
}

function checksTable(points: MonitoringPoint[]): string {
  if (!points.length) return '<p class="empty">no monitoring check yet</p>';
  const rows = [...points]
    .reverse()
    .slice(0, 20)
    .map(
      (p) => `<tr data-check="${esc(p.windowEnd.toISOString())}"><td>${esc(when(p.windowEnd))}</td><td>${p.version === null ? '—' : `v${p.version}`}</td><td data-field="level">${pill(p.level)}${p.breach ? ' <b>breach</b>' : ''}</td>
<td class="num" data-field="rows">${p.rows ?? '—'}</td><td class="num" data-field="labeledRows">${p.labeledRows ?? '—'}</td><td class="num" data-field="predictionPsi">${fixed(p.predictionPsi)}</td>
<td class="num" data-field="maxFeaturePsi">${fixed(p.maxFeaturePsi)}</td><td>${esc(p.maxFeature ?? '—')}</td><td class="num" data-field="onlineAuc">${fixed(p.onlineAuc)}</td></tr>`,
    )
    .join('');
  return `<table class="checks"><tr><th>Window end</th><th>Version</th><th>Verdict</th><th>Rows</th><th>Labelled</th><th>Prediction PSI</th><th>Max feature PSI</th><th>Feature</th><th>Online AUC</th></tr>${rows}</table><p class="muted small">The 20 latest of ${points.length} checks shown.</p>`;
}

export function modelPage(ctx: SiteContext, page: ModelPage): string {
  const m = page.model;
  const aliases = (['production', 'staging', 'candidate'] as const).map((a) => `${pill(a)} ${m.aliases[a] !== undefined ? `<a href="${pageFile.version(m.name, m.aliases[a]!)}">v${m.aliases[a]}</a>` : '—'}`).join(' &nbsp; ');
  const body = `<h1 data-model="${esc(m.name)}">${esc(m.name)}</h1><p class="muted">${esc(m.description ?? '')}</p><p>${aliases}</p>
<h2>Versions</h2>${versionsTable(page)}
<h2>Alias history</h2>${aliasTimeline(page, ctx.generatedAt.getTime())}${historyTable(page)}
<h2>Monitoring</h2>${monitoringCharts(page.monitoring)}${checksTable(page.monitoring)}
<h2>Pipeline runs</h2>${runsTable(ctx, page.runs, false)}`;
  return layout(ctx, m.name, body);
}

function metricTable(metrics: Record<string, unknown>): string {
  const scalars = Object.entries(metrics).filter(([, v]) => typeof v === 'number');
  return `<table class="metrics"><tr>${scalars.map(([k]) => `<th>${esc(k)}</th>`).join('')}</tr><tr>${scalars.map(([k, v]) => `<td class="num" data-field="metric-${esc(k)}">${Number.isInteger(v) ? String(v) : fixed(v as number)}</td>`).join('')}</tr></table>`;
}

function slicesTable(metrics: Record<string, unknown>): string {
  const slices = Array.isArray(metrics.slices) ? (metrics.slices as Array<{ slice?: string; feature?: string; rows?: number; positives?: number; auc?: number | null; logLoss?: number; accuracy?: number }>) : [];
  if (!slices.length) return '';
  const rows = slices
    .slice(0, 60)
    .map((x) => `<tr data-slice="${esc(x.slice ?? '')}"><td>${esc(x.feature ?? '')}</td><td>${esc(x.slice ?? '')}</td><td class="num">${x.rows ?? '—'}</td><td class="num">${x.positives ?? '—'}</td><td class="num">${fixed(x.auc ?? null)}</td><td class="num">${fixed(x.logLoss)}</td><td class="num">${fixed(x.accuracy)}</td></tr>`)
    .join('');
  return `<h2>Slices (test split)</h2><table class="slices"><tr><th>Feature</th><th>Slice</th><th>Rows</th><th>Positives</th><th>AUC</th><th>Log loss</th><th>Accuracy</th></tr>${rows}</table>${slices.length > 60 ? `<p class="muted small">60 of ${slices.length} slices shown.</p>` : ''}`;
}

function signatureTable(signature: unknown): string {
  const inputs = Array.isArray(signature) ? (signature as Array<{ name?: string; datatype?: string; shape?: number[] }>) : [];
  if (!inputs.length) return `<pre class="small">${esc(JSON.stringify(signature))}</pre>`;
  return `<table class="signature"><tr><th>Input</th><th>Type</th><th>Shape</th></tr>${inputs.map((i) => `<tr><td>${esc(i.name ?? '')}</td><td>${esc(i.datatype ?? '')}</td><td>${esc(JSON.stringify(i.shape ?? []))}</td></tr>`).join('')}</table>`;
}

export function versionPage(ctx: SiteContext, page: VersionPage): string {
  const { model: m, version: v, metrics } = page;
  const lin = (metrics.lineage ?? {}) as { snapshot?: { uri?: string; sha256?: string; rows?: number }; schemaVersion?: number; codeVersion?: string; trainer?: string; device?: string; workflowId?: string };
  const champion = metrics.champion as { version?: number; auc?: number } | undefined;
  const lineageRows = [
    ['data', lin.snapshot?.uri ? `<code>${esc(lin.snapshot.uri)}</code>${lin.snapshot.sha256 ? ` <span class="small muted">sha256 ${esc(lin.snapshot.sha256.slice(0, 16))}…</span>` : ''}${typeof lin.snapshot.rows === 'number' ? ` <span data-field="snapshotRows">${lin.snapshot.rows}</span> rows` : ''}` : '—'],
    ['schema', lin.schemaVersion !== undefined ? `v${esc(lin.schemaVersion)}` : '—'],
    ['code', lin.codeVersion ? `<code data-field="codeVersion">${esc(lin.codeVersion)}</code>` : page.trainingRun?.codeVersion ? `<code data-field="codeVersion">${esc(page.trainingRun.codeVersion)}</code>` : '—'],
    ['trainer', `${esc(lin.trainer ?? '—')}${lin.device ? ` on ${esc(lin.device)}` : ''}`],
    ['run', page.trainingRun ? `<a data-field="trainingRun" href="${pageFile.run(page.trainingRun.id)}">${esc(page.trainingRun.workflowId)}</a> ${temporalLink(ctx, page.trainingRun.workflowId, page.trainingRun.runId)}` : '—'],
    ['parent', champion?.version !== undefined ? `<a data-field="parent" href="${pageFile.version(m.name, champion.version)}">v${champion.version}</a> <span class="muted small">(production when it trained; AUC ${fixed(champion.auc)} on the same test split)</span>` : '<span class="muted">none: no production version to compare with</span>'],
  ]
    .map(([k, val]) => `<tr><th>${k}</th><td>${val}</td></tr>`)
    .join('');
  const edges = page.lineage.length
    ? `<table class="lineage"><tr><th>Relation</th><th>From</th><th>Where</th></tr>${page.lineage
        .map((e) => `<tr data-relation="${esc(e.relation)}"><td>${esc(e.relation)}</td><td>${esc(e.kind)} ${esc(e.id)}</td><td>${e.artifact ? `<code>${esc(e.artifact.uri)}</code> <span class="small muted">${e.artifact.bytes} bytes, sha256 ${esc(e.artifact.sha256.slice(0, 16))}…</span>` : ''}</td></tr>`)
        .join('')}</table>`
    : '<p class="empty">no lineage recorded</p>';
  const tenures = page.tenures.length
    ? `<table><tr><th>Alias</th><th>From</th><th>Until</th><th>Moved by</th><th>Ended by</th></tr>${page.tenures.map((h) => `<tr><td>${pill(h.alias)}</td><td>${esc(when(h.validFrom))}</td><td>${h.validUntil ? esc(when(h.validUntil)) : '<b>now</b>'}</td><td>${pill(h.kind)}</td><td>${h.endedBy ? pill(h.endedBy) : '—'}</td></tr>`).join('')}</table>`
    : '<p class="empty">never held an alias</p>';
  const gates = v.rejectionReasons.length ? `<ul class="reasons" data-field="reasons">${v.rejectionReasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : '<p data-field="reasons">Every gate passed.</p>';
  const body = `<h1 data-model="${esc(m.name)}" data-version="${v.version}"><a href="${pageFile.model(m.name)}">${esc(m.name)}</a> v${v.version} ${pill(v.status)} ${v.aliases.map((a) => pill(a)).join(' ')}</h1>
<p class="muted">registered ${esc(when(v.createdAt))}</p>
<h2>Metrics (test split)</h2>${metricTable(metrics)}
<h2>Gates</h2>${gates}
<h2>Lineage</h2><table class="lineage-summary">${lineageRows}</table>${edges}
<h2>Alias tenures</h2>${tenures}
${slicesTable(metrics)}
<h2>Input signature</h2>${signatureTable(page.inputSignature)}`;
  return layout(ctx, `${m.name} v${v.version}`, body);
}

export function runsPage(ctx: SiteContext, runs: RunSummary[]): string {
  return layout(ctx, 'Pipeline runs', `<h1>Pipeline runs</h1>${runsTable(ctx, runs)}`);
}

export function runPage(ctx: SiteContext, page: RunPage): string {
  const r = page.run;
  const now = ctx.generatedAt.getTime();
  const lanes: Lane[] = page.steps
    .filter((s) => s.startedAt)
    .map((s) => ({
      name: s.name,
      bars: [
        {
          from: s.startedAt!.getTime(),
          until: s.finishedAt ? s.finishedAt.getTime() : now,
          label: seconds(s.durationMs ?? (s.finishedAt ? s.finishedAt.getTime() - s.startedAt!.getTime() : null)),
          title: `${s.name}: ${s.status}, ${s.attempts} attempt(s)`,
          tone: s.status === 'failed' ? 'bad' : s.status === 'cached' || s.status === 'skipped' ? 'muted' : undefined,
        },
      ],
    }));
  const steps = page.steps.length
    ? `<table class="steps"><tr><th>Step</th><th>State</th><th>Attempts</th><th>Took</th><th>Started</th><th>Finished</th><th>Worker</th><th>Error</th></tr>${page.steps
        .map(
          (s) => `<tr data-step="${esc(s.name)}"><td>${esc(s.name)}</td><td data-field="status">${pill(s.status)}</td><td class="num" data-field="attempts">${s.attempts}</td><td class="num" data-field="duration">${esc(seconds(s.durationMs))}</td>
<td>${esc(when(s.startedAt))}</td><td>${esc(when(s.finishedAt))}</td><td class="small">${esc(s.worker ?? '—')}</td><td class="small">${esc(s.error ?? '')}</td></tr>`,
        )
        .join('')}</table>`
    : '<p class="empty">no steps recorded</p>';
  const versions = page.versions.length ? `<p>Registered: ${page.versions.map((v) => `<a href="${pageFile.version(v.model, v.version)}">${esc(v.model)} v${v.version}</a> ${pill(v.status)}`).join(', ')}</p>` : '';
  const body = `<h1 data-run="${esc(r.id)}">${esc(r.workflowId)} ${pill(r.status)}</h1>
<p>${esc(r.pipeline)}${r.model ? ` of <a href="${pageFile.model(r.model)}">${esc(r.model)}</a>` : ''} · started ${esc(when(r.startedAt))} · finished ${esc(when(r.finishedAt))} · code <code>${esc(r.codeVersion ?? '—')}</code> · ${temporalLink(ctx, r.workflowId, r.runId)}</p>${versions}
<h2>Steps</h2>${timeline({ id: 'step-timeline', title: 'Step timings', lanes })}${steps}`;
  return layout(ctx, r.workflowId, body);
}

export function errorPage(ctx: SiteContext, title: string, message: string): string {
  return layout(ctx, title, `<h1>${esc(title)}</h1><p>${esc(message)}</p><p><a href="${pageFile.index()}">Back to the models</a></p>`);
}
