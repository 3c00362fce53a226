/** Prometheus text exposition for the model server: counters and a latency histogram per version. */

const BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

interface Series {
  requests: number;
  errors: number;
  rows: number;
  buckets: number[];
  sumMs: number;
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class ServerMetrics {
  private readonly series = new Map<string, Series>();
  badRequests = 0;

  private get(model: string, version: string, role: string): Series {
    const key = `${model}\u0000${version}\u0000${role}`;
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { requests: 0, errors: 0, rows: 0, buckets: BUCKETS_MS.map(() => 0), sumMs: 0 }));
    return s;
  }

  observe(model: string, version: number, role: string, ms: number, rows: number, ok: boolean): void {
    const s = this.get(model, String(version), role);
    s.requests++;
    s.rows += rows;
    if (!ok) s.errors++;
    s.sumMs += ms;
    BUCKETS_MS.forEach((b, i) => {
      if (ms <= b) s.buckets[i]!++;
    });
  }

  render(extra: Record<string, number> = {}): string {
    const lines: string[] = [];
    lines.push('# HELP mlops_inference_requests_total Inference requests served, by model, version and role (stable, canary, shadow).');
    lines.push('# TYPE mlops_inference_requests_total counter');
    const labelled = [...this.series.entries()].map(([k, s]) => {
      const [model, version, role] = k.split('\u0000') as [string, string, string];
      return { labels: `model="${esc(model)}",version="${esc(version)}",role="${esc(role)}"`, s };
    });
    for (const { labels, s } of labelled) lines.push(`mlops_inference_requests_total{${labels}} ${s.requests}`);
    lines.push('# HELP mlops_inference_errors_total Inference requests that failed inside the model.');
    lines.push('# TYPE mlops_inference_errors_total counter');
    for (const { labels, s } of labelled) lines.push(`mlops_inference_errors_total{${labels}} ${s.errors}`);
    lines.push('# HELP mlops_inference_rows_total Rows scored.');
    lines.push('# TYPE mlops_inference_rows_total counter');
    for (const { labels, s } of labelled) lines.push(`mlops_inference_rows_total{${labels}} ${s.rows}`);
    lines.push('# HELP mlops_inference_latency_ms Model latency per request in milliseconds.');
    lines.push('# TYPE mlops_inference_latency_ms histogram');
    for (const { labels, s } of labelled) {
      BUCKETS_MS.forEach((b, i) => lines.push(`mlops_inference_latency_ms_bucket{${labels},le="${b}"} ${s.buckets[i]}`));
      lines.push(`mlops_inference_latency_ms_bucket{${labels},le="+Inf"} ${s.requests}`);
      lines.push(`mlops_inference_latency_ms_sum{${labels}} ${s.sumMs}`);
      lines.push(`mlops_inference_latency_ms_count{${labels}} ${s.requests}`);
    }
    lines.push('# HELP mlops_bad_requests_total Requests refused with a 4xx.');
    lines.push('# TYPE mlops_bad_requests_total counter');
    lines.push(`mlops_bad_requests_total ${this.badRequests}`);
    for (const [name, value] of Object.entries(extra)) {
      lines.push(`# TYPE ${name} gauge`);
      lines.push(`${name} ${value}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
