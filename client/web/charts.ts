/**
 * Inline SVG charts for the registry pages: no script, no external asset, so a page works
 * offline and as a static file. Pure: data in, markup out.
 */

export const esc = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const PALETTE = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2', '#be185d', '#4d7c0f'];
export const colour = (i: number) => PALETTE[i % PALETTE.length]!;

const shortTime = (ms: number) => new Date(ms).toISOString().slice(5, 16).replace('T', ' ');

export interface Series {
  name: string;
  points: Array<{ x: number; y: number | null }>;
}

export interface LineChartOptions {
  id: string;
  title: string;
  series: Series[];
  /** Horizontal reference lines (a threshold). */
  thresholds?: Array<{ y: number; label: string }>;
  /** Vertical marks (a breach, a promotion). */
  marks?: Array<{ x: number; label: string }>;
  yMin?: number;
  yMax?: number;
  width?: number;
  height?: number;
}

function niceTicks(lo: number, hi: number, n = 4): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(6)));
  return ticks;
}

/** A line chart over time; a gap (y null) breaks the line. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 760;
  const H = o.height ?? 220;
  const pad = { l: 56, r: 16, t: 28, b: 34 };
  const xs = o.series.flatMap((s) => s.points.map((p) => p.x)).concat((o.marks ?? []).map((m) => m.x));
  const ys = o.series.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y]))).concat((o.thresholds ?? []).map((t) => t.y));
  if (!xs.length || !ys.length) {
    return `<figure class="chart" id="${esc(o.id)}" data-points="0"><figcaption>${esc(o.title)}</figcaption><p class="empty">no data yet</p></figure>`;
  }
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  let y0 = o.yMin ?? Math.min(...ys);
  let y1 = o.yMax ?? Math.max(...ys);
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y: number) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const parts: string[] = [];
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line class="grid" x1="${pad.l}" x2="${W - pad.r}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}"/>`);
    parts.push(`<text class="tick" x="${pad.l - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${esc(t)}</text>`);
  }
  parts.push(`<text class="tick" x="${pad.l}" y="${H - 10}">${esc(shortTime(x0))}</text>`);
  parts.push(`<text class="tick" x="${W - pad.r}" y="${H - 10}" text-anchor="end">${esc(shortTime(x1))}</text>`);
  for (const t of o.thresholds ?? []) {
    parts.push(`<line class="threshold" x1="${pad.l}" x2="${W - pad.r}" y1="${sy(t.y).toFixed(1)}" y2="${sy(t.y).toFixed(1)}"/><text class="threshold-label" x="${W - pad.r - 4}" y="${(sy(t.y) - 4).toFixed(1)}" text-anchor="end">${esc(t.label)}</text>`);
  }
  for (const m of o.marks ?? []) {
    parts.push(`<line class="mark" x1="${sx(m.x).toFixed(1)}" x2="${sx(m.x).toFixed(1)}" y1="${pad.t}" y2="${H - pad.b}"><title>${esc(m.label)}</title></line>`);
  }
  let count = 0;
  o.series.forEach((s, i) => {
    const segments: string[][] = [[]];
    for (const p of s.points) {
      if (p.y === null) {
        if (segments[segments.length - 1]!.length) segments.push([]);
        continue;
      }
      segments[segments.length - 1]!.push(`${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`);
      count++;
    }
    for (const seg of segments) if (seg.length > 1) parts.push(`<polyline fill="none" stroke="${colour(i)}" stroke-width="2" points="${seg.join(' ')}"/>`);
    for (const p of s.points) {
      if (p.y !== null) parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2.5" fill="${colour(i)}"><title>${esc(`${s.name} ${shortTime(p.x)}: ${p.y}`)}</title></circle>`);
    }
  });
  const legend = o.series.map((s, i) => `<span class="key"><i style="background:${colour(i)}"></i>${esc(s.name)}</span>`).join(' ');
  return `<figure class="chart" id="${esc(o.id)}" data-points="${count}"><figcaption>${esc(o.title)} ${legend}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">${parts.join('')}</svg></figure>`;
}

export interface Lane {
  name: string;
  bars: Array<{ from: number; until: number; label: string; title: string; tone?: string }>;
}

/** Horizontal bars on a shared time axis: alias tenures, step timings. */
export function timeline(o: { id: string; title: string; lanes: Lane[]; width?: number }): string {
  const W = o.width ?? 760;
  const laneH = 26;
  const pad = { l: 150, r: 16, t: 8, b: 26 };
  const bars = o.lanes.flatMap((l) => l.bars);
  if (!bars.length) return `<figure class="chart" id="${esc(o.id)}" data-bars="0"><figcaption>${esc(o.title)}</figcaption><p class="empty">nothing yet</p></figure>`;
  const x0 = Math.min(...bars.map((b) => b.from));
  const x1 = Math.max(x0 + 1, ...bars.map((b) => b.until));
  const H = pad.t + o.lanes.length * laneH + pad.b;
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const parts: string[] = [];
  o.lanes.forEach((lane, i) => {
    const y = pad.t + i * laneH;
    parts.push(`<text class="lane" x="${pad.l - 8}" y="${y + 17}" text-anchor="end">${esc(lane.name)}</text>`);
    lane.bars.forEach((b, j) => {
      const x = sx(b.from);
      const w = Math.max(2, sx(b.until) - x);
      parts.push(
        `<g class="bar ${esc(b.tone ?? '')}"><rect x="${x.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${laneH - 6}" rx="3" fill="${b.tone === 'bad' ? '#dc2626' : b.tone === 'muted' ? '#9ca3af' : colour(j)}"><title>${esc(b.title)}</title></rect>` +
          (w > 24 ? `<text x="${(x + 4).toFixed(1)}" y="${y + 17}" class="bar-label">${esc(b.label)}</text>` : '') +
          '</g>',
      );
    });
  });
  parts.push(`<text class="tick" x="${pad.l}" y="${H - 8}">${esc(shortTime(x0))}</text><text class="tick" x="${W - pad.r}" y="${H - 8}" text-anchor="end">${esc(shortTime(x1))}</text>`);
  return `<figure class="chart" id="${esc(o.id)}" data-bars="${bars.length}"><figcaption>${esc(o.title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">${parts.join('')}</svg></figure>`;
}
